"""The layout names a scan accepts (no imports: the CLI builds its choices from it)."""

LAYOUTS = ("auto", "cmmd", "cbis-ddsm", "vindr", "inbreast", "rsna", "csv", "folders")
