"""Reading and writing videos: .mp4 (H.264), .webm (VP9), .gif, .png (a frame strip), .npy.

Frames are uint8 arrays (F, H, W, 3); .npy also takes a batch (N, F, H, W, 3).
Writes go to a temporary file beside the target and are renamed into place, so
an interrupted write never leaves a half-written file under the user's name.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import VidiffError
from .files import usual_permissions

FORMATS = (".mp4", ".webm", ".gif", ".png", ".npy")
READABLE = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif", ".npy")


class VideoIOError(VidiffError, ValueError):
    """A file that cannot be written or read as a video."""


def check_output_path(path):
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise VideoIOError(f"unsupported output type {suffix or '(none)'!r} for {path}; "
                           f"use one of {', '.join(FORMATS)}")
    return suffix


def _upscale(frames, scale):
    return frames if scale == 1 else frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _encode(frames, path, suffix, fps):
    import av

    codec = {".mp4": "libx264", ".webm": "libvpx-vp9"}[suffix]
    with av.open(str(path), mode="w", format=suffix[1:]) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if suffix == ".mp4":
            stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def save_video(frames, path, fps=8, scale=1):
    """Write uint8 frames (F, H, W, 3) — or (N, F, H, W, 3) for .npy — to `path` atomically.

    `scale` repeats pixels (nearest neighbour) so tiny clips stay sharp in players.
    H.264 and VP9 need even sizes; odd sizes are padded by one black row/column.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.ndim not in (4, 5):
        raise VideoIOError(f"frames must be uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}")
    path = Path(path)
    suffix = check_output_path(path)
    if frames.ndim == 5 and suffix != ".npy":
        raise VideoIOError("several videos go to one file only as .npy; save them one by one otherwise")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(fd)
    usual_permissions(tmp)
    try:
        if suffix == ".npy":
            np.save(tmp, frames)
        elif suffix == ".png":
            _save_strip(_upscale(frames, scale), tmp)
        else:
            frames = _upscale(frames, scale)
            if suffix in (".mp4", ".webm"):
                frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)))
            _encode(frames, tmp, suffix, fps) if suffix != ".gif" else _save_gif(frames, tmp, fps)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _save_gif(frames, path, fps):
    """GIF through Pillow: one adaptive palette per frame keeps solid colours exact.

    Frames are written one by one: Pillow's save_all merges identical consecutive
    frames (a still object, a bounce) into one, and the clip would come back shorter.
    """
    from PIL import GifImagePlugin, Image

    duration = round(1000 / fps)
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    with open(path, "wb") as fp:
        header, _ = GifImagePlugin.getheader(images[0], info={"loop": 0, "duration": duration})
        fp.write(b"".join(header))
        for image in images:
            fp.write(b"".join(GifImagePlugin.getdata(image, include_color_table=True, duration=duration)))
        fp.write(b";")


def _save_strip(frames, path):
    """All frames side by side in one PNG, one pixel of grey between them."""
    import matplotlib.image

    F, H, W, _ = frames.shape
    strip = np.full((H, F * (W + 1) - 1, 3), 64, dtype=np.uint8)
    for i, frame in enumerate(frames):
        strip[:, i * (W + 1): i * (W + 1) + W] = frame
    matplotlib.image.imsave(path, strip, format="png")


IMAGES = (".png", ".jpg", ".jpeg", ".webp", ".npy")


def load_image(path):
    """Read one picture (.png .jpg .jpeg .webp, or .npy uint8 (H, W, 3)) into uint8 (H, W, 3)."""
    path = Path(path)
    if not path.is_file():
        raise VideoIOError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix not in IMAGES:
        raise VideoIOError(f"unsupported image type {suffix or '(none)'!r} for {path}; use one of {', '.join(IMAGES)}")
    if suffix == ".npy":
        try:
            image = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise VideoIOError(f"cannot read {path}: {e}") from None
        if image.dtype != np.uint8 or image.shape[-1:] != (3,) or image.ndim != 3:
            raise VideoIOError(f"{path} must hold uint8 (H, W, 3), got {image.dtype} {image.shape}")
        return image
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise VideoIOError(f"cannot read {path}: {e}") from None


def load_video(path):
    """Decode a video file (or .npy) into uint8 (F, H, W, 3)."""
    path = Path(path)
    if not path.is_file():
        raise VideoIOError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            frames = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise VideoIOError(f"cannot read {path}: {e}") from None
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise VideoIOError(f"{path} must hold uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}")
        return frames
    from ..data.decode import VIDEOS

    if suffix not in VIDEOS:
        raise VideoIOError(f"{path}: unsupported input type {suffix or '(none)'}; "
                           f"give one of {', '.join(VIDEOS)} or .npy")
    import av

    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError, ValueError) as e:
        raise VideoIOError(f"cannot decode {path}: {e}") from None
    if not frames:
        raise VideoIOError(f"{path} has no video frames")
    return np.stack(frames)
