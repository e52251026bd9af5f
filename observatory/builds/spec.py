"""Pip specs of gateway builds: exact versions only, compromised releases refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from observatory.errors import InputError

# The refusal list: releases known to be compromised on PyPI, never installed whatever asks.
REFUSED_RELEASES = {"litellm": frozenset({"1.82.7", "1.82.8", "1.107.0"})}


@dataclass(frozen=True, slots=True)
class PipSpec:
    """A reproducible pip requirement: one package, exact version, optional extras."""

    package: str  # canonical name, e.g. "litellm"
    extras: tuple[str, ...]
    version: str

    def __str__(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.package}{extras}=={self.version}"


def parse_pip_spec(text: str) -> PipSpec:
    """Parse ``name[extras]==X.Y.Z``; refuse ranges, URLs, markers and forbidden versions."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unparsable"
        raise InputError(
            f"bad pip spec {text!r}: {first}; expected e.g. 'litellm[proxy]==1.81.9'"
        ) from exc
    if req.url or req.marker:
        raise InputError(f"bad pip spec {text!r}: URLs and markers are not accepted")
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
        raise InputError(
            f"bad pip spec {text!r}: a build needs one exact version ('==X.Y.Z'); "
            "ranges are refused because a build must be reproducible"
        )
    version = _exact_version(text, specs[0].version)
    spec = PipSpec(canonicalize_name(req.name), tuple(sorted(req.extras)), version)
    check_not_forbidden(spec.package, spec.version)
    return spec


def _exact_version(text: str, version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion as exc:
        raise InputError(f"bad pip spec {text!r}: {version!r} is not a version") from exc


def is_forbidden(
    package: str, version: str, forbidden: Mapping[str, frozenset[str]] = REFUSED_RELEASES
) -> bool:
    """True when ``package==version`` is a listed release, compared as PEP 440 versions
    (``1.107`` is ``1.107.0`` to pip, so it must be to us too)."""
    bad = forbidden.get(canonicalize_name(package), frozenset())
    try:
        wanted = Version(version)
    except InvalidVersion:
        return version in bad
    return any(_same(wanted, listed) for listed in bad)


def _same(version: Version, listed: str) -> bool:
    try:
        return version == Version(listed)
    except InvalidVersion:
        return False


def check_not_forbidden(package: str, version: str) -> None:
    """Raise InputError when ``package==version`` is a known compromised release."""
    name = canonicalize_name(package)
    if is_forbidden(name, version):
        raise InputError(
            f"{name}=={version} is a compromised release and is never installed; "
            f"refused versions: {', '.join(sorted(REFUSED_RELEASES[name]))}"
        )
