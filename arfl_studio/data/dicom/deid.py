"""The one list of DICOM attributes that count as PHI (protected health information).

It is the DICOM PS3.15 Basic Application Level Confidentiality Profile, Table E.1-1
(attributes the profile removes (X), empties (Z), replaces with dummies (D) or new UIDs (U)),
plus the profile's rules that are not single tags:

- every Person Name (VR PN), date, date-time and time (VR DA, DT, TM) attribute,
- every private attribute (odd group; the basic profile removes them),
- the repeating overlay/curve groups (50xx, 60xx comments and data).

One exception, on purpose: ``PatientID`` (0010,0020) is *not* hidden. The profile empties it, but
the datasets this program reads (CMMD and the demo) carry pseudonymous IDs such as ``D1-0001``,
and the ID is what splits patients into folds and names a case in every table; hiding it would
hide nothing. Use ``is_phi(..., keep_patient_id=False)`` to apply the profile strictly.

The viewer's tag panel, every export and every log use ``is_phi``; nothing else keeps a list.
"""

from __future__ import annotations

from typing import NamedTuple

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.tag import Tag

# The one deliberate exception to the profile (see the module docstring).
PSEUDONYMOUS_KEPT = frozenset({"PatientID"})

# VRs that are PHI whatever the attribute: person names, dates, date-times, times.
PHI_VRS = frozenset({"PN", "DA", "DT", "TM"})


class ProfileAttribute(NamedTuple):
    tag: int
    keyword: str
    action: str  # Table E.1-1 basic profile action code: X, Z, D, U, X/Z, X/D, X/Z/D, Z/D, X/Z/U*


# (group, element, keyword, action) from PS3.15 Table E.1-1, sorted by tag.
_TABLE = (
    (0x0000, 0x1000, "AffectedSOPInstanceUID", "X"),
    (0x0000, 0x1001, "RequestedSOPInstanceUID", "U"),
    (0x0002, 0x0003, "MediaStorageSOPInstanceUID", "U"),
    (0x0004, 0x1511, "ReferencedSOPInstanceUIDInFile", "U"),
    (0x0008, 0x0014, "InstanceCreatorUID", "U"),
    (0x0008, 0x0018, "SOPInstanceUID", "U"),
    (0x0008, 0x0020, "StudyDate", "Z"),
    (0x0008, 0x0021, "SeriesDate", "X/D"),
    (0x0008, 0x0022, "AcquisitionDate", "X/Z"),
    (0x0008, 0x0023, "ContentDate", "Z/D"),
    (0x0008, 0x0024, "OverlayDate", "X"),
    (0x0008, 0x0025, "CurveDate", "X"),
    (0x0008, 0x002A, "AcquisitionDateTime", "X/D"),
    (0x0008, 0x0030, "StudyTime", "Z"),
    (0x0008, 0x0031, "SeriesTime", "X/D"),
    (0x0008, 0x0032, "AcquisitionTime", "X/Z"),
    (0x0008, 0x0033, "ContentTime", "Z/D"),
    (0x0008, 0x0034, "OverlayTime", "X"),
    (0x0008, 0x0035, "CurveTime", "X"),
    (0x0008, 0x0050, "AccessionNumber", "Z"),
    (0x0008, 0x0058, "FailedSOPInstanceUIDList", "U"),
    (0x0008, 0x0080, "InstitutionName", "X/Z/D"),
    (0x0008, 0x0081, "InstitutionAddress", "X"),
    (0x0008, 0x0082, "InstitutionCodeSequence", "X/Z/D"),
    (0x0008, 0x0090, "ReferringPhysicianName", "Z"),
    (0x0008, 0x0092, "ReferringPhysicianAddress", "X"),
    (0x0008, 0x0094, "ReferringPhysicianTelephoneNumbers", "X"),
    (0x0008, 0x0096, "ReferringPhysicianIdentificationSequence", "X"),
    (0x0008, 0x010D, "ContextGroupExtensionCreatorUID", "U"),
    (0x0008, 0x0201, "TimezoneOffsetFromUTC", "X"),
    (0x0008, 0x1010, "StationName", "X/Z/D"),
    (0x0008, 0x1030, "StudyDescription", "X"),
    (0x0008, 0x103E, "SeriesDescription", "X"),
    (0x0008, 0x1040, "InstitutionalDepartmentName", "X"),
    (0x0008, 0x1048, "PhysiciansOfRecord", "X"),
    (0x0008, 0x1049, "PhysiciansOfRecordIdentificationSequence", "X"),
    (0x0008, 0x1050, "PerformingPhysicianName", "X"),
    (0x0008, 0x1052, "PerformingPhysicianIdentificationSequence", "X"),
    (0x0008, 0x1060, "NameOfPhysiciansReadingStudy", "X"),
    (0x0008, 0x1062, "PhysiciansReadingStudyIdentificationSequence", "X"),
    (0x0008, 0x1070, "OperatorsName", "X/Z/D"),
    (0x0008, 0x1072, "OperatorIdentificationSequence", "X/D"),
    (0x0008, 0x1080, "AdmittingDiagnosesDescription", "X"),
    (0x0008, 0x1084, "AdmittingDiagnosesCodeSequence", "X"),
    (0x0008, 0x1110, "ReferencedStudySequence", "X/Z"),
    (0x0008, 0x1111, "ReferencedPerformedProcedureStepSequence", "X/Z/D"),
    (0x0008, 0x1120, "ReferencedPatientSequence", "X"),
    (0x0008, 0x1140, "ReferencedImageSequence", "X/Z/U*"),
    (0x0008, 0x1155, "ReferencedSOPInstanceUID", "U"),
    (0x0008, 0x1195, "TransactionUID", "U"),
    (0x0008, 0x2111, "DerivationDescription", "X"),
    (0x0008, 0x2112, "SourceImageSequence", "X/Z/U*"),
    (0x0008, 0x3010, "IrradiationEventUID", "U"),
    (0x0008, 0x4000, "IdentifyingComments", "X"),
    (0x0008, 0x9123, "CreatorVersionUID", "U"),
    (0x0010, 0x0010, "PatientName", "Z"),
    (0x0010, 0x0020, "PatientID", "Z"),
    (0x0010, 0x0021, "IssuerOfPatientID", "X"),
    (0x0010, 0x0030, "PatientBirthDate", "Z"),
    (0x0010, 0x0032, "PatientBirthTime", "X"),
    (0x0010, 0x0040, "PatientSex", "Z"),
    (0x0010, 0x0050, "PatientInsurancePlanCodeSequence", "X"),
    (0x0010, 0x0101, "PatientPrimaryLanguageCodeSequence", "X"),
    (0x0010, 0x0102, "PatientPrimaryLanguageModifierCodeSequence", "X"),
    (0x0010, 0x1000, "OtherPatientIDs", "X"),
    (0x0010, 0x1001, "OtherPatientNames", "X"),
    (0x0010, 0x1002, "OtherPatientIDsSequence", "X"),
    (0x0010, 0x1005, "PatientBirthName", "X"),
    (0x0010, 0x1010, "PatientAge", "X"),
    (0x0010, 0x1020, "PatientSize", "X"),
    (0x0010, 0x1030, "PatientWeight", "X"),
    (0x0010, 0x1040, "PatientAddress", "X"),
    (0x0010, 0x1050, "InsurancePlanIdentification", "X"),
    (0x0010, 0x1060, "PatientMotherBirthName", "X"),
    (0x0010, 0x1080, "MilitaryRank", "X"),
    (0x0010, 0x1081, "BranchOfService", "X"),
    (0x0010, 0x1090, "MedicalRecordLocator", "X"),
    (0x0010, 0x2000, "MedicalAlerts", "X"),
    (0x0010, 0x2110, "Allergies", "X"),
    (0x0010, 0x2150, "CountryOfResidence", "X"),
    (0x0010, 0x2152, "RegionOfResidence", "X"),
    (0x0010, 0x2154, "PatientTelephoneNumbers", "X"),
    (0x0010, 0x2160, "EthnicGroup", "X"),
    (0x0010, 0x2180, "Occupation", "X"),
    (0x0010, 0x21A0, "SmokingStatus", "X"),
    (0x0010, 0x21B0, "AdditionalPatientHistory", "X"),
    (0x0010, 0x21C0, "PregnancyStatus", "X"),
    (0x0010, 0x21D0, "LastMenstrualDate", "X"),
    (0x0010, 0x21F0, "PatientReligiousPreference", "X"),
    (0x0010, 0x2203, "PatientSexNeutered", "X/Z"),
    (0x0010, 0x2297, "ResponsiblePerson", "X"),
    (0x0010, 0x2299, "ResponsibleOrganization", "X"),
    (0x0010, 0x4000, "PatientComments", "X"),
    (0x0018, 0x0010, "ContrastBolusAgent", "Z/D"),
    (0x0018, 0x1000, "DeviceSerialNumber", "X/Z/D"),
    (0x0018, 0x1002, "DeviceUID", "U"),
    (0x0018, 0x1004, "PlateID", "X"),
    (0x0018, 0x1005, "GeneratorID", "X"),
    (0x0018, 0x1007, "CassetteID", "X"),
    (0x0018, 0x1008, "GantryID", "X"),
    (0x0018, 0x1030, "ProtocolName", "X/D"),
    (0x0018, 0x1400, "AcquisitionDeviceProcessingDescription", "X/D"),
    (0x0018, 0x4000, "AcquisitionComments", "X"),
    (0x0018, 0x700A, "DetectorID", "X/D"),
    (0x0018, 0x9424, "AcquisitionProtocolDescription", "X"),
    (0x0018, 0xA003, "ContributionDescription", "X"),
    (0x0020, 0x000D, "StudyInstanceUID", "U"),
    (0x0020, 0x000E, "SeriesInstanceUID", "U"),
    (0x0020, 0x0010, "StudyID", "Z"),
    (0x0020, 0x0052, "FrameOfReferenceUID", "U"),
    (0x0020, 0x0200, "SynchronizationFrameOfReferenceUID", "U"),
    (0x0020, 0x3401, "ModifyingDeviceID", "X"),
    (0x0020, 0x3404, "ModifyingDeviceManufacturer", "X"),
    (0x0020, 0x3406, "ModifiedImageDescription", "X"),
    (0x0020, 0x4000, "ImageComments", "X"),
    (0x0020, 0x9158, "FrameComments", "X"),
    (0x0020, 0x9161, "ConcatenationUID", "U"),
    (0x0020, 0x9164, "DimensionOrganizationUID", "U"),
    (0x0028, 0x1199, "PaletteColorLookupTableUID", "U"),
    (0x0028, 0x1214, "LargePaletteColorLookupTableUID", "U"),
    (0x0028, 0x4000, "ImagePresentationComments", "X"),
    (0x0032, 0x0012, "StudyIDIssuer", "X"),
    (0x0032, 0x1020, "ScheduledStudyLocation", "X"),
    (0x0032, 0x1021, "ScheduledStudyLocationAETitle", "X"),
    (0x0032, 0x1030, "ReasonForStudy", "X"),
    (0x0032, 0x1032, "RequestingPhysician", "X"),
    (0x0032, 0x1033, "RequestingService", "X"),
    (0x0032, 0x1060, "RequestedProcedureDescription", "X/Z"),
    (0x0032, 0x1070, "RequestedContrastAgent", "X"),
    (0x0032, 0x4000, "StudyComments", "X"),
    (0x0038, 0x0004, "ReferencedPatientAliasSequence", "X"),
    (0x0038, 0x0010, "AdmissionID", "X"),
    (0x0038, 0x0011, "IssuerOfAdmissionID", "X"),
    (0x0038, 0x001E, "ScheduledPatientInstitutionResidence", "X"),
    (0x0038, 0x0020, "AdmittingDate", "X"),
    (0x0038, 0x0021, "AdmittingTime", "X"),
    (0x0038, 0x0040, "DischargeDiagnosisDescription", "X"),
    (0x0038, 0x0050, "SpecialNeeds", "X"),
    (0x0038, 0x0060, "ServiceEpisodeID", "X"),
    (0x0038, 0x0061, "IssuerOfServiceEpisodeID", "X"),
    (0x0038, 0x0062, "ServiceEpisodeDescription", "X"),
    (0x0038, 0x0300, "CurrentPatientLocation", "X"),
    (0x0038, 0x0400, "PatientInstitutionResidence", "X"),
    (0x0038, 0x0500, "PatientState", "X"),
    (0x0038, 0x4000, "VisitComments", "X"),
    (0x0040, 0x0001, "ScheduledStationAETitle", "X"),
    (0x0040, 0x0002, "ScheduledProcedureStepStartDate", "X"),
    (0x0040, 0x0003, "ScheduledProcedureStepStartTime", "X"),
    (0x0040, 0x0004, "ScheduledProcedureStepEndDate", "X"),
    (0x0040, 0x0005, "ScheduledProcedureStepEndTime", "X"),
    (0x0040, 0x0006, "ScheduledPerformingPhysicianName", "X"),
    (0x0040, 0x0007, "ScheduledProcedureStepDescription", "X"),
    (0x0040, 0x000B, "ScheduledPerformingPhysicianIdentificationSequence", "X"),
    (0x0040, 0x0010, "ScheduledStationName", "X"),
    (0x0040, 0x0011, "ScheduledProcedureStepLocation", "X"),
    (0x0040, 0x0012, "PreMedication", "X"),
    (0x0040, 0x0241, "PerformedStationAETitle", "X"),
    (0x0040, 0x0242, "PerformedStationName", "X"),
    (0x0040, 0x0243, "PerformedLocation", "X"),
    (0x0040, 0x0244, "PerformedProcedureStepStartDate", "X"),
    (0x0040, 0x0245, "PerformedProcedureStepStartTime", "X"),
    (0x0040, 0x0250, "PerformedProcedureStepEndDate", "X"),
    (0x0040, 0x0251, "PerformedProcedureStepEndTime", "X"),
    (0x0040, 0x0253, "PerformedProcedureStepID", "X"),
    (0x0040, 0x0254, "PerformedProcedureStepDescription", "X"),
    (0x0040, 0x0275, "RequestAttributesSequence", "X"),
    (0x0040, 0x0280, "CommentsOnThePerformedProcedureStep", "X"),
    (0x0040, 0x0555, "AcquisitionContextSequence", "X"),
    (0x0040, 0x1001, "RequestedProcedureID", "X"),
    (0x0040, 0x1004, "PatientTransportArrangements", "X"),
    (0x0040, 0x1005, "RequestedProcedureLocation", "X"),
    (0x0040, 0x1010, "NamesOfIntendedRecipientsOfResults", "X"),
    (0x0040, 0x1011, "IntendedRecipientsOfResultsIdentificationSequence", "X"),
    (0x0040, 0x1101, "PersonIdentificationCodeSequence", "D"),
    (0x0040, 0x1102, "PersonAddress", "X"),
    (0x0040, 0x1103, "PersonTelephoneNumbers", "X"),
    (0x0040, 0x1400, "RequestedProcedureComments", "X"),
    (0x0040, 0x2001, "ReasonForTheImagingServiceRequest", "X"),
    (0x0040, 0x2008, "OrderEnteredBy", "X"),
    (0x0040, 0x2009, "OrderEntererLocation", "X"),
    (0x0040, 0x2010, "OrderCallbackPhoneNumber", "X"),
    (0x0040, 0x2016, "PlacerOrderNumberImagingServiceRequest", "Z"),
    (0x0040, 0x2017, "FillerOrderNumberImagingServiceRequest", "Z"),
    (0x0040, 0x2400, "ImagingServiceRequestComments", "X"),
    (0x0040, 0x3001, "ConfidentialityConstraintOnPatientDataDescription", "X"),
    (0x0040, 0x4023, "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID", "U"),
    (0x0040, 0x4025, "ScheduledStationNameCodeSequence", "X"),
    (0x0040, 0x4027, "ScheduledStationGeographicLocationCodeSequence", "X"),
    (0x0040, 0x4028, "PerformedStationNameCodeSequence", "X"),
    (0x0040, 0x4030, "PerformedStationGeographicLocationCodeSequence", "X"),
    (0x0040, 0x4034, "ScheduledHumanPerformersSequence", "X"),
    (0x0040, 0x4035, "ActualHumanPerformersSequence", "X"),
    (0x0040, 0x4036, "HumanPerformerOrganization", "X"),
    (0x0040, 0x4037, "HumanPerformerName", "X"),
    (0x0040, 0xA027, "VerifyingOrganization", "X"),
    (0x0040, 0xA073, "VerifyingObserverSequence", "D"),
    (0x0040, 0xA075, "VerifyingObserverName", "D"),
    (0x0040, 0xA078, "AuthorObserverSequence", "X"),
    (0x0040, 0xA07A, "ParticipantSequence", "X"),
    (0x0040, 0xA07C, "CustodialOrganizationSequence", "X"),
    (0x0040, 0xA088, "VerifyingObserverIdentificationCodeSequence", "Z"),
    (0x0040, 0xA123, "PersonName", "D"),
    (0x0040, 0xA124, "UID", "U"),
    (0x0040, 0xA730, "ContentSequence", "X"),
    (0x0040, 0xDB0C, "TemplateExtensionOrganizationUID", "U"),
    (0x0040, 0xDB0D, "TemplateExtensionCreatorUID", "U"),
    (0x0070, 0x0001, "GraphicAnnotationSequence", "D"),
    (0x0070, 0x0084, "ContentCreatorName", "Z"),
    (0x0070, 0x0086, "ContentCreatorIdentificationCodeSequence", "X"),
    (0x0070, 0x031A, "FiducialUID", "U"),
    (0x0088, 0x0140, "StorageMediaFileSetUID", "U"),
    (0x0088, 0x0200, "IconImageSequence", "X"),
    (0x0088, 0x0904, "TopicTitle", "X"),
    (0x0088, 0x0906, "TopicSubject", "X"),
    (0x0088, 0x0910, "TopicAuthor", "X"),
    (0x0088, 0x0912, "TopicKeywords", "X"),
    (0x0400, 0x0100, "DigitalSignatureUID", "X"),
    (0x0400, 0x0402, "ReferencedDigitalSignatureSequence", "X"),
    (0x0400, 0x0403, "ReferencedSOPInstanceMACSequence", "X"),
    (0x0400, 0x0404, "MAC", "X"),
    (0x0400, 0x0550, "ModifiedAttributesSequence", "X"),
    (0x0400, 0x0561, "OriginalAttributesSequence", "X"),
    (0x2030, 0x0020, "TextString", "X"),
    (0x3006, 0x0024, "ReferencedFrameOfReferenceUID", "U"),
    (0x3006, 0x00C2, "RelatedFrameOfReferenceUID", "U"),
    (0x300A, 0x0013, "DoseReferenceUID", "U"),
    (0x300E, 0x0008, "ReviewerName", "X/Z"),
    (0x4000, 0x0010, "Arbitrary", "X"),
    (0x4000, 0x4000, "TextComments", "X"),
    (0x4008, 0x0042, "ResultsIDIssuer", "X"),
    (0x4008, 0x0102, "InterpretationRecorder", "X"),
    (0x4008, 0x010A, "InterpretationTranscriber", "X"),
    (0x4008, 0x010B, "InterpretationText", "X"),
    (0x4008, 0x010C, "InterpretationAuthor", "X"),
    (0x4008, 0x0111, "InterpretationApproverSequence", "X"),
    (0x4008, 0x0114, "PhysicianApprovingInterpretation", "X"),
    (0x4008, 0x0115, "InterpretationDiagnosisDescription", "X"),
    (0x4008, 0x0118, "ResultsDistributionListSequence", "X"),
    (0x4008, 0x0119, "DistributionName", "X"),
    (0x4008, 0x011A, "DistributionAddress", "X"),
    (0x4008, 0x0202, "InterpretationIDIssuer", "X"),
    (0x4008, 0x0300, "Impressions", "X"),
    (0x4008, 0x4000, "ResultsComments", "X"),
    (0xFFFA, 0xFFFA, "DigitalSignaturesSequence", "X"),
    (0xFFFC, 0xFFFC, "DataSetTrailingPadding", "X"),
)

PROFILE_ATTRIBUTES: dict[int, ProfileAttribute] = {
    (g << 16) | e: ProfileAttribute((g << 16) | e, kw, action) for g, e, kw, action in _TABLE
}
PROFILE_KEYWORDS: frozenset[str] = frozenset(a.keyword for a in PROFILE_ATTRIBUTES.values())


def _repeating_group_phi(tag: int) -> bool:
    """Curve data (50xx,xxxx) and overlay comments/data (60xx,4000 / 60xx,3000)."""
    group, element = tag >> 16, tag & 0xFFFF
    if group & 0xFF00 == 0x5000:
        return True
    return group & 0xFF00 == 0x6000 and element in (0x3000, 0x4000)


def _as_tag(tag_or_keyword) -> int | None:
    if isinstance(tag_or_keyword, str):
        text = tag_or_keyword.strip()
        if text.startswith("(") and "," in text:  # "(0010,0010)"
            group, element = text.strip("()").split(",")
            return (int(group, 16) << 16) | int(element, 16)
        return tag_for_keyword(text)
    return int(Tag(tag_or_keyword))


def is_phi(tag_or_keyword, vr: str | None = None, *, keep_patient_id: bool = True) -> bool:
    """True when an attribute must be hidden unless the user asks to see PHI.

    ``tag_or_keyword``: a pydicom tag, an int, a (group, element) pair, ``"(0010,0010)"`` or a
    keyword such as ``"PatientName"``. ``vr``: the element's VR when known (a PN, DA, DT or TM value
    is PHI even in an attribute the table does not name, e.g. inside a private sequence).
    Unknown names are treated as PHI: hiding too much is safe, showing too much is not.
    """
    tag = _as_tag(tag_or_keyword)
    if tag is None:
        return True
    attribute = PROFILE_ATTRIBUTES.get(tag)
    if keep_patient_id and attribute is not None and attribute.keyword in PSEUDONYMOUS_KEPT:
        return False
    if attribute is not None or (tag >> 16) % 2 == 1 or _repeating_group_phi(tag):
        return True
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return True
    return vr in PHI_VRS
