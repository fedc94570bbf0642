"""The PHI list against DICOM PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile)."""

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag

from arfl_studio.data.dicom.deid import PROFILE_ATTRIBUTES, is_phi

# Rows of PS3.15 Table E.1-1 written out from the standard: (tag, attribute name, basic profile action).
# They span every kind of attribute the profile protects: names, IDs, dates/times, institution,
# device identity, free text, operators and physicians, accession number, instance UIDs.
STANDARD_ROWS = [
    ((0x0008, 0x0050), "Accession Number", "Z"),
    ((0x0018, 0x4000), "Acquisition Comments", "X"),
    ((0x0008, 0x0022), "Acquisition Date", "X/Z"),
    ((0x0008, 0x002A), "Acquisition DateTime", "X/D"),
    ((0x0008, 0x0032), "Acquisition Time", "X/Z"),
    ((0x0010, 0x21B0), "Additional Patient History", "X"),
    ((0x0008, 0x0023), "Content Date", "Z/D"),
    ((0x0008, 0x0033), "Content Time", "Z/D"),
    ((0x0018, 0x1000), "Device Serial Number", "X/Z/D"),
    ((0x0018, 0x1002), "Device UID", "U"),
    ((0x0018, 0x700A), "Detector ID", "X/D"),
    ((0x0010, 0x2160), "Ethnic Group", "X"),
    ((0x0020, 0x0052), "Frame of Reference UID", "U"),
    ((0x0018, 0x1008), "Gantry ID", "X"),
    ((0x0020, 0x4000), "Image Comments", "X"),
    ((0x0008, 0x0081), "Institution Address", "X"),
    ((0x0008, 0x0082), "Institution Code Sequence", "X/Z/D"),
    ((0x0008, 0x0080), "Institution Name", "X/Z/D"),
    ((0x0008, 0x1040), "Institutional Department Name", "X"),
    ((0x0008, 0x0014), "Instance Creator UID", "U"),
    ((0x0010, 0x0021), "Issuer of Patient ID", "X"),
    ((0x0002, 0x0003), "Media Storage SOP Instance UID", "U"),
    ((0x0010, 0x1090), "Medical Record Locator", "X"),
    ((0x0008, 0x1060), "Name of Physician(s) Reading Study", "X"),
    ((0x0008, 0x1070), "Operators' Name", "X/Z/D"),
    ((0x0008, 0x1072), "Operators' Identification Sequence", "X/D"),
    ((0x0010, 0x1000), "Other Patient IDs", "X"),
    ((0x0010, 0x1001), "Other Patient Names", "X"),
    ((0x0010, 0x1040), "Patient's Address", "X"),
    ((0x0010, 0x1010), "Patient's Age", "X"),
    ((0x0010, 0x0030), "Patient's Birth Date", "Z"),
    ((0x0010, 0x0032), "Patient's Birth Time", "X"),
    ((0x0010, 0x4000), "Patient Comments", "X"),
    ((0x0010, 0x1060), "Patient's Mother's Birth Name", "X"),
    ((0x0010, 0x0010), "Patient's Name", "Z"),
    ((0x0010, 0x0040), "Patient's Sex", "Z"),
    ((0x0010, 0x1020), "Patient's Size", "X"),
    ((0x0010, 0x2154), "Patient's Telephone Numbers", "X"),
    ((0x0010, 0x1030), "Patient's Weight", "X"),
    ((0x0040, 0x0244), "Performed Procedure Step Start Date", "X"),
    ((0x0008, 0x1050), "Performing Physicians' Name", "X"),
    ((0x0008, 0x1048), "Physician(s) of Record", "X"),
    ((0x0018, 0x1004), "Plate ID", "X"),
    ((0x0018, 0x1030), "Protocol Name", "X/D"),
    ((0x0032, 0x1030), "Reason for Study", "X"),
    ((0x0008, 0x0090), "Referring Physician's Name", "Z"),
    ((0x0008, 0x0092), "Referring Physician's Address", "X"),
    ((0x0008, 0x0094), "Referring Physician's Telephone Numbers", "X"),
    ((0x0032, 0x1032), "Requesting Physician", "X"),
    ((0x0008, 0x0021), "Series Date", "X/D"),
    ((0x0008, 0x103E), "Series Description", "X"),
    ((0x0020, 0x000E), "Series Instance UID", "U"),
    ((0x0008, 0x0031), "Series Time", "X/D"),
    ((0x0008, 0x0018), "SOP Instance UID", "U"),
    ((0x0008, 0x1010), "Station Name", "X/Z/D"),
    ((0x0032, 0x4000), "Study Comments", "X"),
    ((0x0008, 0x0020), "Study Date", "Z"),
    ((0x0008, 0x1030), "Study Description", "X"),
    ((0x0020, 0x0010), "Study ID", "Z"),
    ((0x0020, 0x000D), "Study Instance UID", "U"),
    ((0x0008, 0x0030), "Study Time", "Z"),
    ((0x0040, 0xA027), "Verifying Organization", "X"),
]

# Attributes the profile keeps, which a mammography reader needs to show.
NOT_PHI = [
    "Rows",
    "Columns",
    "Modality",
    "ImageLaterality",
    "ViewPosition",
    "PhotometricInterpretation",
    "BitsStored",
    "WindowCenter",
    "PresentationIntentType",
    "BodyPartExamined",
    "SOPClassUID",
    "TransferSyntaxUID",
    "Manufacturer",
    "PixelSpacing",
    "RescaleSlope",
]


@pytest.mark.parametrize("tag, name, action", STANDARD_ROWS, ids=[r[1] for r in STANDARD_ROWS])
def test_every_profile_row_is_in_the_list_with_its_action(tag, name, action):
    number = (tag[0] << 16) | tag[1]
    entry = PROFILE_ATTRIBUTES.get(number)
    assert entry is not None, f"{name} {tag} missing from the PHI list"
    assert entry.action == action
    assert entry.keyword == keyword_for_tag(number)  # keyword and tag name the same attribute
    if entry.keyword != "PatientID":
        assert is_phi(number) and is_phi(entry.keyword) and is_phi(f"({tag[0]:04X},{tag[1]:04X})")


def test_list_keywords_match_the_dicom_dictionary():
    for number, entry in PROFILE_ATTRIBUTES.items():
        assert keyword_for_tag(number) == entry.keyword, hex(number)


@pytest.mark.parametrize("keyword", NOT_PHI)
def test_image_attributes_are_not_phi(keyword):
    assert not is_phi(keyword)


def test_patient_id_is_kept_because_pseudonymous_unless_strict():
    assert not is_phi("PatientID")
    assert is_phi("PatientID", keep_patient_id=False)


def test_rules_beyond_single_tags():
    # Any person name, date, date-time or time, even in an attribute the table does not list.
    assert is_phi("InstanceCreationDate")
    assert is_phi((0x0009, 0x1001), "LO")  # private attribute
    assert is_phi((0x0019, 0x0010), "LO")  # private creator
    assert is_phi((0x6002, 0x3000))  # overlay data in a repeating group
    assert is_phi("NoSuchKeyword")  # unknown: hide rather than show
    assert is_phi((0x0008, 0x0000 + 0x0012), "DA")


def test_a_header_has_its_phi_found(tmp_path):
    ds = pydicom.Dataset()
    ds.PatientName, ds.PatientID, ds.StudyDate = "Doe^Jane", "D1-0001", "20100718"
    ds.InstitutionName, ds.Rows, ds.Modality = "General Hospital", 64, "MG"
    hidden = {e.keyword for e in ds if is_phi(e.tag, e.VR)}
    assert hidden == {"PatientName", "StudyDate", "InstitutionName"}
