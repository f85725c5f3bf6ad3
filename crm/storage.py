"""Static files storage: hashed names and compression (WhiteNoise), tolerant of vendored maps."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns):
    def keep(pattern) -> bool:
        text = pattern[0] if isinstance(pattern, tuple) else pattern
        return "sourceMappingURL" not in text

    return tuple((ext, tuple(p for p in group if keep(p))) for ext, group in patterns)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Vendored libraries ship minified files whose `sourceMappingURL` names maps we do not
    vendor; rewriting those references would fail `collectstatic`, and browsers only fetch maps
    when developer tools are open, so they are left as they are."""

    patterns = _without_source_maps(CompressedManifestStaticFilesStorage.patterns)
