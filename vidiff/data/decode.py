"""Training files to frames: decode a video or a picture, short side resized to `size`.

Frames are uint8 (F, H, W, 3) with min(H, W) = size and the aspect kept, plus
each frame's presentation time in seconds (F,), which clip sampling at a
target fps needs. A file that cannot serve raises UnusableFile with a short
reason ("unreadable: ...", "no video stream"), which the folder datasets count.
"""

import numpy as np

VIDEOS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif")
IMAGES = (".png", ".jpg", ".jpeg", ".webp")
FALLBACK_RATE = 25.0   # what ffmpeg assumes when a stream states no frame rate


class UnusableFile(Exception):
    """One file that cannot give a training clip; the message is the reason."""


def resize_short(image, size):
    """PIL image resized so its short side is `size`, aspect kept (PIL's bicubic is antialiased)."""
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return image if new == (w, h) else image.resize(new, Image.Resampling.BICUBIC)


def read_video(path, size):
    """Every frame of a video file: uint8 (F, H, W, 3) with short side `size`, times (F,) in seconds."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnusableFile("no video stream")
            stream = container.streams.video[0]
            frames, times = [], []
            for frame in container.decode(stream):
                # Resize while decoding so a long clip never sits in memory at full size.
                frames.append(np.asarray(resize_short(frame.to_image(), size)))
                times.append(frame.time)
            rate = stream.average_rate or stream.guessed_rate
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise UnusableFile(f"unreadable: {getattr(e, 'strerror', None) or e}") from None
    if not frames:
        raise UnusableFile("unreadable: no frames decoded")
    times = np.asarray([np.nan if t is None else t for t in times], dtype=np.float64)
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        # Missing or repeated timestamps: assume a constant rate instead.
        times = np.arange(len(frames)) / float(rate or FALLBACK_RATE)
    return np.stack(frames), np.nan_to_num(times)


def read_image(path, size):
    """A picture as a one-frame video: uint8 (1, H, W, 3) with short side `size`, times (1,)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            image = resize_short(im.convert("RGB"), size)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise UnusableFile(f"unreadable: {e}") from None
    return np.asarray(image)[None], np.zeros(1)
