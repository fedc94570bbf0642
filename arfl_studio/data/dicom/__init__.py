"""DICOM: reading, LUTs, decoder plugins, de-identification."""
