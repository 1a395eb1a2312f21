"""The command line: vidiff train | generate | eval. Each subcommand parses, builds a config, calls the library."""

import argparse
import sys


def cmd_train(args):
    from .config import load_config
    from .training.loop import train

    cfg = load_config(args.config, args.overrides)
    train(cfg, resume=args.resume, max_steps=args.max_steps)


def build_parser():
    p = argparse.ArgumentParser(prog="vidiff", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a video diffusion model from a config file")
    t.add_argument("config", help="a TOML config, e.g. configs/shapes-s.toml")
    t.add_argument("overrides", nargs="*", help="dotted overrides such as optim.lr=3e-4 out_dir=runs/x")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in out_dir")
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (schedule unchanged)")
    t.set_defaults(func=cmd_train)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
