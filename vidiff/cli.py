"""The vidiff command line: train | generate | extend | interpolate | eval | export | average | inflate | data.

Each subcommand parses its options, builds a config and calls one library
function. User mistakes end in one line on stderr and exit status 2
(set VIDIFF_DEBUG=1 to see the full traceback instead).
"""

import argparse
import os
import sys
from pathlib import Path

from .data.captions import SPLITS   # plain Python: keeps `--help` free of torch
from .errors import VidiffError

SAMPLERS = ("ddim", "ddpm", "dpmpp_2m", "dpmpp_2m_sde", "euler", "heun")   # diffusion.samplers.SAMPLERS, without torch


def cmd_train(args):
    from .config import load_config
    from .training.loop import train

    cfg = load_config(args.config, args.overrides)
    train(cfg, resume=args.resume, max_steps=args.max_steps)
    print(f"model written to {Path(cfg.out_dir) / 'model'}")


def _load_pipeline(args):
    from .pipeline import VideoPipeline

    if args.time_power is not None and args.time_power <= 0:
        raise VidiffError(f"--time-power must be positive, got {args.time_power}")
    if args.eta is not None and args.eta < 0:
        raise VidiffError(f"--eta must be at least 0, got {args.eta}")
    if args.candidates is not None and args.candidates < 1:
        raise VidiffError(f"--candidates must be at least 1, got {args.candidates}")
    if args.eta is not None and args.sampler not in (None, "ddpm"):
        raise VidiffError(f"--eta is the ddpm sampler's fresh noise; it does not apply to --sampler {args.sampler}")
    pipe = VideoPipeline.from_pretrained(args.model)
    if args.time_power is not None:
        pipe.sample_defaults.time_power = args.time_power
    if args.guidance_with_frames is not None:
        pipe.sample_defaults.guidance_with_frames = args.guidance_with_frames
    if args.candidates is not None:
        pipe.sample_defaults.candidates = args.candidates
    if args.eta is not None:
        if pipe.sample_defaults.sampler != "ddpm" and args.sampler is None:
            raise VidiffError(f"--eta is the ddpm sampler's fresh noise; this model samples with "
                              f"{pipe.sample_defaults.sampler}: add --sampler ddpm")
        pipe.sample_defaults.eta = args.eta
    return pipe


def _output_paths(out, num, force):
    from .io.video import check_output_path

    out = Path(out)
    suffix = check_output_path(out)
    paths = [out] if num == 1 or suffix == ".npy" else \
        [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(num)]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise VidiffError(f"{existing[0]} exists; pass --force to overwrite it")
    return paths


def _write(video, paths, args):
    from .io.video import save_video

    if len(paths) == 1 and len(video) > 1:
        save_video(video, paths[0])
    else:
        for path, clip in zip(paths, video):
            save_video(clip, path, fps=args.fps, scale=args.scale)
    for path in paths:
        print(path)


def _sampling(args):
    import torch

    return dict(num_inference_steps=args.steps, guidance_scale=args.guidance, sampler=args.sampler,
                guidance_min_t=args.guidance_min_t, frame_guidance=args.frame_guidance,
                generator=torch.Generator().manual_seed(args.seed), progress=True)


def cmd_generate(args):
    from .io.video import load_image

    paths = _output_paths(args.output, args.num, args.force)     # fail before the slow part
    image = load_image(args.image) if args.image else None
    pipe = _load_pipeline(args)
    size = args.size or pipe.size
    video = pipe(args.prompt, num_frames=args.frames, height=None if image is not None else size,
                 width=None if image is not None else size, num_videos_per_prompt=args.num, image=image,
                 **_sampling(args))                                          # (N, F, H, W, 3)
    _write(video, paths, args)


def cmd_extend(args):
    from .io.video import load_video

    paths = _output_paths(args.output, 1, args.force)
    video = load_video(args.input)
    pipe = _load_pipeline(args)
    _write(pipe.extend(video, args.prompt, args.frames, **_sampling(args)), paths, args)


def cmd_interpolate(args):
    from .io.video import load_video

    paths = _output_paths(args.output, 1, args.force)
    video = load_video(args.input)
    pipe = _load_pipeline(args)
    _write(pipe.interpolate(video, args.prompt, args.factor, **_sampling(args)), paths, args)


def cmd_eval(args):
    from .eval.evaluate import eval_prompts, evaluate, format_table, write_results

    pipe = _load_pipeline(args)
    if args.task != "text":
        return _eval_task(pipe, args)
    items = eval_prompts(args.phrasing, args.seeds, seed=args.seed)
    if args.limit:
        items = items[: args.limit]
    summary, rows = evaluate(pipe, items, num_frames=args.frames, steps=args.steps, sampler=args.sampler,
                             guidance=args.guidance, guidance_min_t=args.guidance_min_t,
                             frame_guidance=args.frame_guidance, batch_size=args.batch_size, save_dir=args.save_dir)
    steps = args.steps or pipe.sample_defaults.steps
    print(format_table(summary, f"vidiff eval: {args.phrasing} prompts, {steps} steps, "
                                f"{args.frames or pipe.frames} frames"))
    if args.output:
        settings = {k: v for k, v in vars(args).items() if k != "func"}
        write_results(args.output, summary, rows, settings)
        print(f"results written to {args.output}")


def _eval_task(pipe, args):
    from .eval.evaluate import write_results
    from .eval.tasks import format_task, run_task, task_items

    if not pipe.net.cfg.frame_conditioning:
        raise VidiffError(f"--task {args.task} needs a frame-conditioned model (model.frame_conditioning)")
    items = task_items(args.seeds, args.seed)[: args.limit or None]
    summary, rows = run_task(pipe, args.task, items, args.steps, args.sampler, args.guidance, args.seed,
                             guidance_min_t=args.guidance_min_t, frame_guidance=args.frame_guidance)
    print(format_task(summary))
    if args.output:
        write_results(args.output, summary, rows, {k: v for k, v in vars(args).items() if k != "func"})
        print(f"results written to {args.output}")


def _new_dir(args):
    """The output directory of export, average and inflate: refused if it exists, unless --force."""
    out = Path(args.output)
    if out.exists() and not args.force:
        raise VidiffError(f"{out} exists; pass --force to replace it")
    return out


def _dtype(name):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def cmd_export(args):
    from .pipeline import VideoPipeline

    out = _new_dir(args)
    VideoPipeline.from_pretrained(args.model).save_pretrained(out, dtype=_dtype(args.dtype))
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"{out} ({args.dtype}, {size:.1f} MB)")


def cmd_average(args):
    from .training.average import average_models

    out = _new_dir(args)
    average_models(args.models, args.weights).save_pretrained(out, dtype=_dtype(args.dtype))
    print(f"{out}: the average of {len(args.models)} models ({args.dtype})")


def cmd_inflate(args):
    from .models.inflate import inflate
    from .pipeline import VideoPipeline

    out = _new_dir(args)
    pipe = VideoPipeline.from_pretrained(args.model)
    changes = {"conv3d_levels": args.conv3d_levels} if args.conv3d_levels else {}
    if args.stack_levels:
        changes.update(stack_levels=args.stack_levels, max_frames=args.frames)
    try:
        pipe.net = inflate(pipe.net, **changes)
    except ValueError as e:
        raise VidiffError(f"cannot inflate {args.model}: {e}") from None
    pipe.frames = args.frames
    pipe.save_pretrained(out)
    print(f"{out}: video model, {args.frames} frames; fine-tune it with init_from = \"{out / 'model.safetensors'}\"")


def cmd_data_check(args):
    from .data.folder import check_folder

    report = check_folder(args.folder, args.frames, args.size, fps=args.clip_fps, stride=args.stride or 1,
                          captions=args.captions, images=args.images)
    for path, reason in report.skipped:
        print(f"{path}: {reason}")
    report.require_files()
    print(report.summary())


def _output_options(p):
    p.add_argument("-o", "--output", required=True, help="output file: .mp4, .webm, .gif, .png or .npy")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--fps", type=int, default=8, help="frames per second of .mp4/.gif output")
    p.add_argument("--scale", type=int, default=4, help="pixel repeat factor for .mp4/.gif/.png (not .npy)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")


def _sampling_options(p, frames=True):
    p.add_argument("--model", default=None, help="model directory (model.safetensors + config.json) or a "
                                                  "training checkpoint (RUN/checkpoints/step_N, its EMA "
                                                  "weights); default: the model shipped with vidiff")
    if frames:
        p.add_argument("--frames", type=int, default=None,
                       help="number of frames (default: the model's training length)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's, 20)")
    p.add_argument("--sampler", choices=SAMPLERS, default=None, help="sampler (default: the model's)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale on the prompt (default: the model's); where frames are "
                        "given, --guidance-with-frames if the model or the command sets it")
    p.add_argument("--guidance-with-frames", type=float, default=None,
                   help="guidance scale on the prompt where frames are given (--image, extend, interpolate, "
                        "windows past the training length; default: the model's, else --guidance)")
    p.add_argument("--guidance-min-t", type=float, default=None,
                   help="no guidance at diffusion times t <= this, 0-1 (default: the model's)")
    p.add_argument("--frame-guidance", type=float, default=None,
                   help="guidance scale on given frames (--image, extend, interpolate, windows past the "
                        "training length); 1 = none (default: the model's)")
    p.add_argument("--time-power", type=float, default=None,
                   help="time grid t_i = (i / steps)^P: 1 spaces the steps evenly, < 1 puts more of them at "
                        "high noise (default: the model's)")
    p.add_argument("--eta", type=float, default=None,
                   help="ddpm only: fresh noise each step adds, times the posterior's; 1 = DDPM, > 1 more, "
                        "at most all of it (default: the model's; the shipped model uses 1.3)")
    p.add_argument("--candidates", type=int, default=None, metavar="K",
                   help="where frames are given: sample K of each window and keep the most typical, the one "
                        "nearest the others (K times the sampling; default: the model's; the shipped model "
                        "uses 4)")


def build_parser():
    p = argparse.ArgumentParser(prog="vidiff", description="Text-to-video diffusion: train, generate, evaluate.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a video diffusion model from a config file",
                       description="Train a model; checkpoints, previews and the exported model go to out_dir.")
    t.add_argument("config", help="a TOML config file, e.g. configs/shapes-s.toml")
    t.add_argument("overrides", nargs="*", help="dotted overrides such as optim.lr=3e-4 out_dir=runs/x")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in out_dir")
    t.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps without changing the learning-rate schedule")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate a video from a text prompt (and optionally a first frame)",
                       description="Generate a video from a prompt and write .mp4, .gif, .png (frame strip) or .npy. "
                                   "--frames beyond the model's training length makes a long video from "
                                   "overlapping windows (frame-conditioned models).")
    g.add_argument("prompt", help='what to show, e.g. "a red circle moving right"')
    g.add_argument("--image", default=None,
                   help="image-to-video: this picture (.png .jpg .webp, or .npy (H, W, 3)) becomes frame 0")
    _sampling_options(g)
    g.add_argument("--size", type=int, default=None, help="frame height and width in pixels (default: the model's)")
    g.add_argument("--num", type=int, default=1,
                   help="number of videos; .npy holds them all (N, F, H, W, 3), other types get _0, _1, ... names")
    _output_options(g)
    g.set_defaults(func=cmd_generate)

    x = sub.add_parser("extend", help="continue a video",
                       description="Continue a clip: new frames follow the given ones, which are kept unchanged.")
    x.add_argument("input", help="the clip to continue (.mp4 .webm .gif .npy)")
    x.add_argument("prompt", help="what happens next")
    x.add_argument("--frames", type=int, default=16, help="number of frames to add (default 16)")
    _sampling_options(x, frames=False)
    _output_options(x)
    x.set_defaults(func=cmd_extend)

    i = sub.add_parser("interpolate", help="make new frames between the frames of a video",
                       description="Temporal super-resolution: factor - 1 new frames between every two given ones.")
    i.add_argument("input", help="the clip (.mp4 .webm .gif .npy)")
    i.add_argument("--factor", type=int, choices=(2, 4), default=2, help="frame-rate multiplier")
    i.add_argument("--prompt", default="", help="optional description of the clip")
    _sampling_options(i, frames=False)
    _output_options(i)
    i.set_defaults(func=cmd_interpolate)

    e = sub.add_parser("eval", help="score a model on the shapes world (colour, shape, direction, motion)",
                       description="Generate clips for every colour x shape x direction and score them.")
    _sampling_options(e)
    e.add_argument("--seeds", type=int, default=2, help="clips per colour x shape x direction")
    e.add_argument("--task", choices=("text", "i2v", "extend", "long", "interp"), default="text",
                   help="text-to-video (default), or a known-frame task on true clips: image-to-video from "
                        "frame 0, continuation of the first half, 128-frame long video, x4 interpolation")
    e.add_argument("--phrasing", choices=("canonical", *SPLITS), default="canonical",
                   help="prompt wording: canonical ('a red circle moving right'), training wordings (the "
                        "basic or the wide vocabulary), or held-out wordings no training config uses")
    e.add_argument("--limit", type=int, default=0, help="evaluate only the first N prompts (quick checks)")
    e.add_argument("--batch-size", type=int, default=16, help="clips generated together")
    e.add_argument("--seed", type=int, default=0, help="seed of noise and wording")
    e.add_argument("--save-dir", default=None, help="also write every clip as a .gif here")
    e.add_argument("-o", "--output", default=None, help="write per-clip results as JSON here")
    e.set_defaults(func=cmd_eval)
    x = sub.add_parser("export", help="copy a model directory, e.g. to ship it in bf16",
                       description="Write a model directory's weights in another precision.")
    x.add_argument("model", help="a model directory, e.g. runs/shapes-s/model")
    x.add_argument("-o", "--output", required=True, help="the new model directory")
    x.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="bf16", help="weight precision")
    x.add_argument("--force", action="store_true", help="replace an existing output directory")
    x.set_defaults(func=cmd_export)

    a = sub.add_parser("average", help="average the weights of several models (SWA over training cycles)",
                       description="Write one model whose weights are the (weighted) average of several "
                                   "models of one architecture, e.g. the end points of successive training "
                                   "cycles fine-tuned from each other. Settings other than the weights are "
                                   "the first model's.")
    a.add_argument("models", nargs="+", help="model directories or training checkpoints (RUN/checkpoints/step_N)")
    a.add_argument("-o", "--output", required=True, help="the new model directory")
    a.add_argument("--weights", type=float, nargs="+", default=None,
                   help="one weight per model (default: equal); normalised to sum to 1")
    a.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="weight precision")
    a.add_argument("--force", action="store_true", help="replace an existing output directory")
    a.set_defaults(func=cmd_average)

    f = sub.add_parser("inflate", help="turn an image model into a video model",
                       description="Add layers across frames to an image model (trained on one-frame clips) so "
                                   "that the video model's output equals the image model's on every frame; then "
                                   "fine-tune it on videos.")
    f.add_argument("model", help="the image model directory (model.temporal = false)")
    f.add_argument("-o", "--output", required=True, help="the new video model directory")
    f.add_argument("--frames", type=int, default=16, help="the clip length it will be trained for (default 16)")
    f.add_argument("--conv3d-levels", type=int, nargs="+", default=None,
                   help="also add a 3-D convolution to the stages of these U-Net levels (0 = finest)")
    f.add_argument("--stack-levels", type=int, nargs="+", default=None,
                   help="also add stacked-frame layers (time as channels, --frames slots) at these levels")
    f.add_argument("--force", action="store_true", help="replace an existing output directory")
    f.set_defaults(func=cmd_inflate)

    d = sub.add_parser("data", help="inspect a folder of training videos or pictures",
                       description="Tools for folders of real training data.")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = dsub.add_parser("check", help="list the files a training run would skip, and why",
                        description="Probe every video (or picture) under FOLDER as training would: print each "
                                    "file that would be skipped with its reason, then a summary. Exits non-zero "
                                    "when nothing usable is left.")
    c.add_argument("folder", metavar="FOLDER", help="the data folder, searched recursively")
    c.add_argument("--frames", type=int, default=16, help="clip length in frames (default 16)")
    c.add_argument("--size", type=int, default=32, help="frame height and width in pixels (default 32)")
    rate = c.add_mutually_exclusive_group()
    # dest is not `fps`: main() refuses an fps below 1, a fine rate for sampling clips
    rate.add_argument("--fps", dest="clip_fps", type=float, default=None, metavar="F",
                      help="sample clips at this frame rate (default: every --stride-th frame)")
    rate.add_argument("--stride", type=int, default=None, metavar="S", help="take every S-th source frame (default 1)")
    c.add_argument("--captions", default=None, metavar="MANIFEST",
                   help="a .csv or .jsonl with path and caption per file (default: clip.txt beside clip.mp4)")
    c.add_argument("--images", action="store_true", help="check pictures (.png .jpg .jpeg .webp), not videos")
    c.set_defaults(func=cmd_data_check)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    for name in ("frames", "steps", "num", "size", "seeds", "batch_size", "limit", "fps", "scale", "stride"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "limit" else 1):
            build_parser().error(f"--{name.replace('_', '-')} must be positive, got {value}")
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("vidiff: interrupted", file=sys.stderr)
        return 130
    except (VidiffError, ValueError, FileNotFoundError) as e:
        if os.environ.get("VIDIFF_DEBUG"):
            raise
        if getattr(e, "exit_code", None):            # a run stopped on purpose, checkpoint saved
            print(f"vidiff: {e}", file=sys.stderr)
            return e.exit_code
        print(f"vidiff: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
