"""Only what pyproject.toml cannot say: the repository's resources/ folder ships
inside the package as ``arfl_studio/resources`` (example configs and icons), so a
wheel install has every file the commands refer to, and the user guide's pages
(docs/*.md) as ``arfl_studio/resources/docs`` for the app's Help menu."""

from setuptools import find_packages, setup

RESOURCES = {
    "arfl_studio.resources.configs": ["*.toml"],
    "arfl_studio.resources.icons": ["*.svg", "*.png", "*.ico", "*.icns"],
    "arfl_studio.resources.docs": ["*.md"],
}

setup(
    packages=find_packages(include=["arfl_studio*"]) + list(RESOURCES),
    package_dir={"arfl_studio.resources": "resources", "arfl_studio.resources.docs": "docs"},
    package_data=RESOURCES,
)
