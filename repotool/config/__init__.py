"""repotool.toml, read once into frozen, typed objects.

:mod:`repotool.config.settings` holds the settings (each field with its default
and its rule); :mod:`repotool.config.reading` finds the project, reads the file
and says exactly what is wrong with it.  Relative paths are taken from the
project root, the folder holding repotool.toml.
"""

from repotool.config.reading import find_project_root, load_config, parse_config
from repotool.config.settings import (
    CONFIG_NAME,
    EL6_RPMLIB,
    EL7_RPMLIB,
    AnnounceConfig,
    BuildConfig,
    Config,
    KeyConfig,
    MediaConfig,
    MirrorConfig,
    PublishConfig,
    SettingProblem,
    SiteConfig,
    TargetConfig,
)

__all__ = [
    "CONFIG_NAME",
    "EL6_RPMLIB",
    "EL7_RPMLIB",
    "AnnounceConfig",
    "BuildConfig",
    "Config",
    "KeyConfig",
    "MediaConfig",
    "MirrorConfig",
    "PublishConfig",
    "SettingProblem",
    "SiteConfig",
    "TargetConfig",
    "find_project_root",
    "load_config",
    "parse_config",
]
