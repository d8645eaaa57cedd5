"""Where profiles come from: the built-ins shipped with relieve and the user's own files.

User profiles live in ``<user config dir>/relieve/profiles/*.toml`` (platformdirs), or in the
directory given by ``--config-dir`` / ``RELIEVE_CONFIG_DIR``. A user profile with the same name
as a built-in one replaces it (copy a built-in to change it); ``profiles list`` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from profiles.errors import ProfileError, ProfileProblem, RelieveError
from profiles.models import Profile
from profiles.parse import MAX_PROFILE_BYTES, parse_profile

__all__ = ["LoadedProfile", "ProfileLibrary", "default_config_dir"]

CONFIG_DIR_ENV = "RELIEVE_CONFIG_DIR"


def default_config_dir() -> Path:
    """The user's relieve configuration directory (``RELIEVE_CONFIG_DIR`` overrides it)."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("relieve", appauthor=False))


@dataclass(frozen=True)
class LoadedProfile:
    profile: Profile
    source: str  # "built-in" or the file's path
    overrides_builtin: bool = False

    @property
    def builtin(self) -> bool:
        return self.source == "built-in"


class ProfileLibrary:
    """Built-in and user profiles by name, and profile files by path."""

    def __init__(self, config_dir: Path | None = None) -> None:
        self.config_dir = config_dir if config_dir is not None else default_config_dir()
        self._cache: dict[str, LoadedProfile] | None = None
        self.problems: list[ProfileProblem] = []

    @property
    def user_dir(self) -> Path:
        return self.config_dir / "profiles"

    def all(self) -> dict[str, LoadedProfile]:
        """Every profile by name. User files that do not load are kept in :attr:`problems`."""
        if self._cache is None:
            found: dict[str, LoadedProfile] = {}
            for entry in sorted(
                resources.files("profiles.builtin").iterdir(), key=lambda e: e.name
            ):
                if entry.name.endswith(".toml"):
                    profile = parse_profile(entry.read_text(encoding="utf-8"), entry.name)
                    found[profile.name] = LoadedProfile(profile, "built-in")
            if self.user_dir.is_dir():
                for path in sorted(self.user_dir.glob("*.toml")):
                    try:
                        profile = load_file(path)
                    except ProfileError as exc:
                        self.problems.extend(exc.problems)
                        continue
                    overrides = found.get(profile.name)
                    found[profile.name] = LoadedProfile(
                        profile, str(path), overrides_builtin=bool(overrides and overrides.builtin)
                    )
            self._cache = found
        return self._cache

    def get(self, name: str) -> Profile:
        """A profile by name; raises with the known names when there is none."""
        profiles = self.all()
        if name in profiles:
            return profiles[name].profile
        known = ", ".join(sorted(profiles))
        raise RelieveError(
            f"There is no profile called '{name}'. Known profiles: {known}. "
            "Give a file path to use a profile file."
        )

    def resolve(self, name_or_file: str) -> Profile:
        """A profile by name, or from a file when the argument is a path to one."""
        if names_a_file(name_or_file):
            return load_file(Path(name_or_file))
        return self.get(name_or_file)


def names_a_file(name_or_file: str) -> bool:
    """Whether a profile argument is a file path rather than a profile's name."""
    return name_or_file.endswith(".toml") or os.sep in name_or_file or Path(name_or_file).is_file()


def load_file(path: Path) -> Profile:
    """Read and validate one profile file.

    At most one character more than a profile may have is read, so a huge file (or an endless
    stream) is refused with a sentence by the parser instead of filling memory.
    """
    try:
        with path.open(encoding="utf-8") as file:
            text = file.read(MAX_PROFILE_BYTES + 1)
    except FileNotFoundError:
        raise ProfileError(
            [ProfileProblem(str(path), "", "no such file; check the path")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProfileError(
            [ProfileProblem(str(path), "", f"cannot be read ({reason}); check the file")]
        ) from None
    return parse_profile(text, str(path))
