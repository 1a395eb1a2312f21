"""vidiff: text-to-video generation with diffusion models."""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `import vidiff` stays cheap for the CLI's --help.
    if name == "VideoPipeline":
        from .pipeline import VideoPipeline

        return VideoPipeline
    raise AttributeError(name)
