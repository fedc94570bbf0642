"""What the GUI writes beside a run carries no PHI: the data layer's one list, shareable paths."""

from arfl_studio.data.dicom.scrub import scrub


def test_scrub_drops_profile_attributes_and_dated_folders_keeps_pseudonymous_ids():
    from arfl_studio.data.dicom.deid import is_phi

    doc = {
        "results": [
            {
                "flipped": [
                    {
                        "index": 3,
                        "id": "CMMD/D1-0001/07-18-2010-NA-NA-10000/1.000000-NA-20000/1-1.dcm",
                        "patient_id": "D1-0001",
                        "laterality": "R",
                        "view": "CC",
                        "PatientName": "Doe^Jane",
                        "StudyDate": "20100718",
                        "InstitutionName": "General",
                        "Modality": "MG",
                    }
                ]
            }
        ],
        "auc": 0.7,
    }
    out = scrub(doc, key=b"k" * 32)
    case = out["results"][0]["flipped"][0]
    for keyword in ("PatientName", "StudyDate", "InstitutionName"):
        assert is_phi(keyword) and keyword not in case
    assert case["Modality"] == "MG" and case["patient_id"] == "D1-0001" and case["index"] == 3
    assert "07-18-2010" not in case["id"] and "20000" not in case["id"]
    assert case["id"].startswith("CMMD/D1-0001/") and case["id"].endswith("1-1.dcm")
    assert out["auc"] == 0.7 and doc["results"][0]["flipped"][0]["PatientName"] == "Doe^Jane"  # a copy
