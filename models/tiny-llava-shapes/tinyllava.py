"""Tiny LLaVA-1.5-architecture VLM: model (training module), tokenizer, safetensors I/O and an
independent plain-ops reference inference path that reads only the exported tensors.

Module/parameter names are chosen so that ``state_dict()`` keys are exactly the Hugging Face
LLaVA checkpoint names (``vision_tower.vision_model...``, ``multi_modal_projector...``,
``language_model...``). Auxiliary training heads live under ``aux_heads.`` and are never
exported.
"""
import hashlib
import json
import math
import re
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Constants / config
# ---------------------------------------------------------------------------------------------
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "USER", "ASSISTANT"]
UNK, BOS, EOS, PAD, IMAGE, USER, ASSISTANT = range(7)
TEMPLATE_WORDS = [":"]  # punctuation introduced by the chat template itself

DEFAULT_CFG = dict(
    image_size=128, patch_size=8, num_channels=3,
    v_hidden=128, v_layers=4, v_heads=4, v_mlp=512, v_eps=1e-5,
    t_hidden=128, t_layers=4, t_heads=4, t_kv_heads=2, t_mlp=384, t_eps=1e-5,
    rope_theta=10000.0, max_pos=512, vocab_size=None,
)

PRE_TOKEN_RE = re.compile(r"\w+|[^\w\s]+")


# ---------------------------------------------------------------------------------------------
# Tokenizer (word level; mirrors the HF tokenizer.json written by ``tokenizer_json``)
# ---------------------------------------------------------------------------------------------
class WordTokenizer:
    """Exactly what HF tokenizers does with our tokenizer.json:
    1. split the raw text on the special (added) tokens, matched on the *raw* text
       (normalized=false), leftmost-longest;
    2. lower-case each remaining segment (normalizer Lowercase);
    3. pre-tokenize with Whitespace (regex \\w+|[^\\w\\s]+);
    4. WordLevel lookup, unknown -> <unk>;
    5. post-processor TemplateProcessing prepends <s> (when add_special_tokens=True)."""

    def __init__(self, vocab_words):
        words = sorted(set(vocab_words) - set(SPECIAL_TOKENS))
        self.itos = list(SPECIAL_TOKENS) + words
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        specials = sorted(SPECIAL_TOKENS, key=len, reverse=True)
        self._split_re = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")

    def __len__(self):
        return len(self.itos)

    def encode(self, text, add_bos=True):
        ids = [BOS] if add_bos else []
        for seg in self._split_re.split(text):
            if not seg:
                continue
            if seg in self.stoi and seg in SPECIAL_TOKENS:
                ids.append(self.stoi[seg])
                continue
            for tok in PRE_TOKEN_RE.findall(seg.lower()):
                ids.append(self.stoi.get(tok, UNK))
        return ids

    def decode(self, ids, skip_special=True):
        """HF decode with decoder WordPiece(prefix '##', cleanup=true): tokens joined by ' ',
        then per-token cleanup (' .'->'.', ' ,'->',', ' ?'->'?', ...)."""
        toks = [self.itos[i] for i in ids if not (skip_special and i < len(SPECIAL_TOKENS))]
        out = []
        for i, t in enumerate(toks):
            if i != 0:
                t = t[2:] if t.startswith("##") else " " + t
            for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                         (" n't", "n't"), (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"),
                         (" 've", "'ve"), (" 're", "'re")):
                t = t.replace(a, b)
            out.append(t)
        return "".join(out)

    def tokenizer_json(self):
        added = [dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False,
                      normalized=False, special=True) for i, t in enumerate(SPECIAL_TOKENS)]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [BOS], "tokens": ["<s>"]}},
            },
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {"type": "WordLevel",
                      "vocab": {t: i for i, t in enumerate(self.itos)},
                      "unk_token": "<unk>"},
        }


def normalize_answer(text):
    """Exact-match normalisation used for scoring: lower-case, Whitespace pre-tokens joined by ' '."""
    return " ".join(PRE_TOKEN_RE.findall(text.lower()))


PROMPT_FORMAT = "USER: <image>\n{question} ASSISTANT:"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% endif %} "
    "{% else %}ASSISTANT: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% endif %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


# ---------------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------------
def normalize_pixels_np(rgb_uint8_hwc):
    """RGB uint8 HWC -> float32 CHW: (x/255 - mean)/std, computed in float32."""
    x = rgb_uint8_hwc.astype(np.float32) * np.float32(1.0 / 255.0)
    x = (x - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def normalize_pixels_torch(u8_bhwc):
    x = u8_bhwc.float() * (1.0 / 255.0)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32)
    std = torch.tensor(CLIP_STD, dtype=torch.float32)
    return ((x - mean) / std).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------------
# Vision tower (CLIP ViT)
# ---------------------------------------------------------------------------------------------
def sincos_2d(grid, dim):
    """2-D sin/cos position table [grid*grid, dim]: first half encodes the row, second the column."""
    assert dim % 4 == 0
    q = dim // 4
    omega = 1.0 / (10000 ** (np.arange(q, dtype=np.float64) / q))
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    out = []
    for p in (rows.reshape(-1), cols.reshape(-1)):
        a = p[:, None] * omega[None]
        out += [np.sin(a), np.cos(a)]
    return np.concatenate(out, 1).astype(np.float32)


class CLIPEmbeddings(nn.Module):
    def __init__(s, c):
        super().__init__()
        d, p = c["v_hidden"], c["patch_size"]
        g = c["image_size"] // p
        s.class_embedding = nn.Parameter(torch.randn(d) * 0.02)
        s.patch_embedding = nn.Conv2d(c["num_channels"], d, p, p, bias=False)
        s.position_embedding = nn.Embedding(g * g + 1, d)
        with torch.no_grad():
            pe = torch.zeros(g * g + 1, d)
            pe[1:] = torch.from_numpy(sincos_2d(g, d))
            s.position_embedding.weight.copy_(pe)

    def forward(s, px):
        x = s.patch_embedding(px).flatten(2).transpose(1, 2)
        cls = s.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
        return torch.cat([cls, x], 1) + s.position_embedding.weight.unsqueeze(0)


class CLIPAttention(nn.Module):
    def __init__(s, c):
        super().__init__()
        d = c["v_hidden"]
        s.h = c["v_heads"]
        s.hd = d // s.h
        s.q_proj, s.k_proj, s.v_proj, s.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(s, x, cls_only=False):
        B, T, D = x.shape
        xq = x[:, :1] if cls_only else x
        Tq = xq.shape[1]
        q = s.q_proj(xq).view(B, Tq, s.h, s.hd).transpose(1, 2)
        k = s.k_proj(x).view(B, T, s.h, s.hd).transpose(1, 2)
        v = s.v_proj(x).view(B, T, s.h, s.hd).transpose(1, 2)
        a = torch.softmax((q @ k.transpose(-1, -2)) * (s.hd ** -0.5), -1)
        o = (a @ v).transpose(1, 2).reshape(B, Tq, D)
        return s.out_proj(o)


class CLIPMLP(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.fc1 = nn.Linear(c["v_hidden"], c["v_mlp"])
        s.fc2 = nn.Linear(c["v_mlp"], c["v_hidden"])

    def forward(s, x):
        h = s.fc1(x)
        return s.fc2(h * torch.sigmoid(1.702 * h))


class CLIPEncoderLayer(nn.Module):
    def __init__(s, c):
        super().__init__()
        d, eps = c["v_hidden"], c["v_eps"]
        s.layer_norm1 = nn.LayerNorm(d, eps=eps)
        s.self_attn = CLIPAttention(c)
        s.layer_norm2 = nn.LayerNorm(d, eps=eps)
        s.mlp = CLIPMLP(c)

    def forward(s, x, cls_only=False):
        h = s.self_attn(s.layer_norm1(x), cls_only)
        x = (x[:, :1] if cls_only else x) + h
        return x + s.mlp(s.layer_norm2(x))


class CLIPEncoder(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.layers = nn.ModuleList(CLIPEncoderLayer(c) for _ in range(c["v_layers"]))


class CLIPVisionModel(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.embeddings = CLIPEmbeddings(c)
        s.pre_layrnorm = nn.LayerNorm(c["v_hidden"], eps=c["v_eps"])
        s.encoder = CLIPEncoder(c)
        s.post_layernorm = nn.LayerNorm(c["v_hidden"], eps=c["v_eps"])

    def forward(s, px, want_cls=True):
        """Returns (hidden_states[-2] [B,257,d], post_layernorm(final CLS) [B,d] or None).
        The final layer is evaluated for the CLS query only (its patch outputs are unused by
        LLaVA); this is exact for the CLS output."""
        x = s.pre_layrnorm(s.embeddings(px))
        layers = s.encoder.layers
        for layer in layers[:-1]:
            x = layer(x)
        feat = x
        cls = s.post_layernorm(layers[-1](x, cls_only=True)[:, 0]) if want_cls else None
        return feat, cls


class VisionTower(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.vision_model = CLIPVisionModel(c)


class Projector(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.linear_1 = nn.Linear(c["v_hidden"], c["t_hidden"])
        s.linear_2 = nn.Linear(c["t_hidden"], c["t_hidden"])

    def forward(s, x):
        return s.linear_2(F.gelu(s.linear_1(x)))


# ---------------------------------------------------------------------------------------------
# Language model (Llama)
# ---------------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(s, d, eps):
        super().__init__()
        s.weight = nn.Parameter(torch.ones(d))
        s.eps = eps

    def forward(s, x):
        return s.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps))


def rope_cos_sin(pos, hd, theta):
    """pos: int tensor [...]. HF Llama default rope: inv_freq = 1/theta^(2i/hd) (float32),
    emb = cat(freqs, freqs); returns cos, sin [..., hd] float32."""
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    f = pos.float().unsqueeze(-1) * inv
    e = torch.cat([f, f], -1)
    return e.cos(), e.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class LlamaAttention(nn.Module):
    def __init__(s, c):
        super().__init__()
        d = c["t_hidden"]
        s.h, s.kvh = c["t_heads"], c["t_kv_heads"]
        s.hd = d // s.h
        s.q_proj = nn.Linear(d, s.h * s.hd, bias=False)
        s.k_proj = nn.Linear(d, s.kvh * s.hd, bias=False)
        s.v_proj = nn.Linear(d, s.kvh * s.hd, bias=False)
        s.o_proj = nn.Linear(s.h * s.hd, d, bias=False)

    def forward(s, x, cos, sin, mask, past=None):
        """x [B,T,d]; cos/sin [B,T,hd]; mask additive [B or 1,1,T,Tk]; past (k,v) [B,kvh,Tp,hd]."""
        B, T, _ = x.shape
        q = s.q_proj(x).view(B, T, s.h, s.hd).transpose(1, 2)
        k = s.k_proj(x).view(B, T, s.kvh, s.hd).transpose(1, 2)
        v = s.v_proj(x).view(B, T, s.kvh, s.hd).transpose(1, 2)
        c, sn = cos.unsqueeze(1), sin.unsqueeze(1)
        q = q * c + rotate_half(q) * sn
        k = k * c + rotate_half(k) * sn
        if past is not None:
            k = torch.cat([past[0], k], 2)
            v = torch.cat([past[1], v], 2)
        new_past = (k, v)
        rep = s.h // s.kvh
        Tk = k.shape[2]
        kk = k.unsqueeze(2).expand(B, s.kvh, rep, Tk, s.hd).reshape(B, s.h, Tk, s.hd)
        vv = v.unsqueeze(2).expand(B, s.kvh, rep, Tk, s.hd).reshape(B, s.h, Tk, s.hd)
        att = (q @ kk.transpose(-1, -2)) / math.sqrt(s.hd)
        if mask is not None:
            att = att + mask
        o = torch.softmax(att, -1) @ vv
        return s.o_proj(o.transpose(1, 2).reshape(B, T, s.h * s.hd)), new_past


class LlamaMLP(nn.Module):
    def __init__(s, c):
        super().__init__()
        d, m = c["t_hidden"], c["t_mlp"]
        s.gate_proj = nn.Linear(d, m, bias=False)
        s.up_proj = nn.Linear(d, m, bias=False)
        s.down_proj = nn.Linear(m, d, bias=False)

    def forward(s, x):
        return s.down_proj(F.silu(s.gate_proj(x)) * s.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.input_layernorm = RMSNorm(c["t_hidden"], c["t_eps"])
        s.self_attn = LlamaAttention(c)
        s.post_attention_layernorm = RMSNorm(c["t_hidden"], c["t_eps"])
        s.mlp = LlamaMLP(c)

    def forward(s, x, cos, sin, mask, past=None):
        h, new_past = s.self_attn(s.input_layernorm(x), cos, sin, mask, past)
        x = x + h
        return x + s.mlp(s.post_attention_layernorm(x)), new_past


class LlamaModel(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.embed_tokens = nn.Embedding(c["vocab_size"], c["t_hidden"])
        s.layers = nn.ModuleList(LlamaDecoderLayer(c) for _ in range(c["t_layers"]))
        s.norm = RMSNorm(c["t_hidden"], c["t_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.model = LlamaModel(c)
        s.lm_head = nn.Linear(c["t_hidden"], c["vocab_size"], bias=False)


class AuxHeads(nn.Module):
    """Training-only heads (never exported)."""
    N_PATCH_LOCAL = [5, 7, 3, 10, 2]      # shape(bg+4), colour(bg+6), size(bg+2), cell(bg+9), centre
    N_PATCH_GLOBAL = [5, 5, 5, 5, 5]      # total count, count per shape (4)
    N_CLS_MULTI = 24                      # (colour, shape) present
    N_CLS_SOFT = [5, 5, 5, 5, 5]          # total count, count per shape

    def __init__(s, c):
        super().__init__()
        d = c["v_hidden"]
        s.patch = nn.Linear(d, sum(s.N_PATCH_LOCAL) + sum(s.N_PATCH_GLOBAL))
        s.cls = nn.Linear(d, s.N_CLS_MULTI + sum(s.N_CLS_SOFT))
        s.sil = nn.Linear(d, c["patch_size"] ** 2)   # the patch's object silhouette (per pixel)
        s.nbr = nn.Linear(d, 36)                      # silhouette of the 3x3-patch neighbourhood, 4-px cells


class TinyLlava(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.c = dict(c)
        s.vision_tower = VisionTower(c)
        s.multi_modal_projector = Projector(c)
        s.language_model = LlamaForCausalLM(c)
        s.aux_heads = AuxHeads(c)
        s.hd = c["t_hidden"] // c["t_heads"]
        for n, p in s.language_model.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        with torch.no_grad():
            for layer in s.language_model.model.layers:  # GPT-2 style residual scaling
                layer.self_attn.o_proj.weight.mul_(1 / math.sqrt(2 * c["t_layers"]))
                layer.mlp.down_proj.weight.mul_(1 / math.sqrt(2 * c["t_layers"]))

    # -- vision -------------------------------------------------------------------------------
    def vision_features(s, px, want_cls=False):
        feat, cls = s.vision_tower.vision_model(px, want_cls)
        return feat[:, 1:], cls  # "default" strategy drops CLS

    # -- language model core -----------------------------------------------------------------
    def lm_forward(s, emb, pos, mask, past=None):
        """emb [B,T,d], pos [B,T] int, mask additive [B|1,1,T,Tk]. Returns (hidden, new_past)."""
        cos, sin = rope_cos_sin(pos, s.hd, s.c["rope_theta"])
        lm = s.language_model.model
        new_past = []
        x = emb
        for i, layer in enumerate(lm.layers):
            x, kv = layer(x, cos, sin, mask, None if past is None else past[i])
            new_past.append(kv)
        return lm.norm(x), new_past

    def logits(s, h):
        return s.language_model.lm_head(h)

    def embed(s, ids):
        return s.language_model.model.embed_tokens(ids)


# ---------------------------------------------------------------------------------------------
# Safetensors (written/read by hand)
# ---------------------------------------------------------------------------------------------
def save_safetensors(path, tensors, metadata=None):
    names = sorted(tensors)
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for n in names:
        a = np.ascontiguousarray(tensors[n].detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32"
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[base + a:base + b], dtype="<f4").reshape(v["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out


def export_state(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith("aux_heads.")}


# ---------------------------------------------------------------------------------------------
# HF config files
# ---------------------------------------------------------------------------------------------
def hf_config(c):
    return {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "image_token_index": IMAGE,
        "image_seq_length": (c["image_size"] // c["patch_size"]) ** 2,
        "ignore_index": -100,
        "projector_hidden_act": "gelu",
        "multimodal_projector_bias": True,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": c["v_hidden"],
            "intermediate_size": c["v_mlp"],
            "num_hidden_layers": c["v_layers"],
            "num_attention_heads": c["v_heads"],
            "image_size": c["image_size"],
            "patch_size": c["patch_size"],
            "num_channels": c["num_channels"],
            "hidden_act": "quick_gelu",
            "layer_norm_eps": c["v_eps"],
            "attention_dropout": 0.0,
            "projection_dim": c["v_hidden"],
        },
        "text_config": {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": c["t_hidden"],
            "intermediate_size": c["t_mlp"],
            "num_hidden_layers": c["t_layers"],
            "num_attention_heads": c["t_heads"],
            "num_key_value_heads": c["t_kv_heads"],
            "head_dim": c["t_hidden"] // c["t_heads"],
            "rms_norm_eps": c["t_eps"],
            "rope_theta": c["rope_theta"],
            "rope_scaling": None,
            "max_position_embeddings": c["max_pos"],
            "vocab_size": c["vocab_size"],
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "tie_word_embeddings": False,
            "bos_token_id": BOS,
            "eos_token_id": EOS,
            "pad_token_id": PAD,
            "torch_dtype": "float32",
        },
    }


def tokenizer_config(tok):
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "image_token": "<image>",
        "add_bos_token": True, "add_eos_token": False,
        "model_max_length": 512,
        "padding_side": "left",
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
        "prompt_format": PROMPT_FORMAT,
        "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False,
                                          "rstrip": False, "single_word": False, "special": True}
                                 for i, t in enumerate(SPECIAL_TOKENS)},
    }


def preprocessor_config(c):
    return {
        "image_processor_type": "CLIPImageProcessor",
        "processor_class": "LlavaProcessor",
        "do_resize": True, "size": {"shortest_edge": c["image_size"]}, "resample": 2,
        "do_center_crop": True, "crop_size": {"height": c["image_size"], "width": c["image_size"]},
        "do_rescale": True, "rescale_factor": 1.0 / 255.0,
        "do_normalize": True, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "do_convert_rgb": True,
        "patch_size": c["patch_size"],
        "vision_feature_select_strategy": "default",
        "num_image_tokens": (c["image_size"] // c["patch_size"]) ** 2,
    }


def config_from_hf(cfg):
    v, t = cfg["vision_config"], cfg["text_config"]
    return dict(image_size=v["image_size"], patch_size=v["patch_size"], num_channels=v["num_channels"],
                v_hidden=v["hidden_size"], v_layers=v["num_hidden_layers"], v_heads=v["num_attention_heads"],
                v_mlp=v["intermediate_size"], v_eps=v["layer_norm_eps"],
                t_hidden=t["hidden_size"], t_layers=t["num_hidden_layers"], t_heads=t["num_attention_heads"],
                t_kv_heads=t["num_key_value_heads"], t_mlp=t["intermediate_size"], t_eps=t["rms_norm_eps"],
                rope_theta=t["rope_theta"], max_pos=t["max_position_embeddings"], vocab_size=t["vocab_size"])


# ---------------------------------------------------------------------------------------------
# Independent reference inference from exported tensors (plain torch ops, full sequence,
# no KV cache, full last ViT layer computed as HF does). Used for reference_outputs.json.
# ---------------------------------------------------------------------------------------------
class ReferenceLlava:
    def __init__(self, W, cfg):
        self.W, self.cfg = W, cfg
        self.c = config_from_hf(cfg)

    def _ln(self, x, p, eps):
        return F.layer_norm(x, (x.shape[-1],), self.W[p + ".weight"], self.W[p + ".bias"], eps)

    def _lin(self, x, p, bias=True):
        y = x @ self.W[p + ".weight"].t()
        return y + self.W[p + ".bias"] if bias else y

    def vision_hidden_states(self, px):
        """px [1,3,H,W] -> list of hidden states like HF (index 0 = after pre_layrnorm)."""
        c, W = self.c, self.W
        pre = "vision_tower.vision_model."
        p = c["patch_size"]
        g = c["image_size"] // p
        d = c["v_hidden"]
        # patch embedding as explicit unfold + matmul: patch (r,c) -> index r*g+c, CHW flatten
        x = px[0].reshape(3, g, p, g, p).permute(1, 3, 0, 2, 4).reshape(g * g, 3 * p * p)
        x = x @ W[pre + "embeddings.patch_embedding.weight"].reshape(d, -1).t()
        x = torch.cat([W[pre + "embeddings.class_embedding"][None], x], 0)
        x = x + W[pre + "embeddings.position_embedding.weight"]
        x = self._ln(x, pre + "pre_layrnorm", c["v_eps"])
        hs = [x]
        h, hd = c["v_heads"], d // c["v_heads"]
        for i in range(c["v_layers"]):
            L = pre + f"encoder.layers.{i}."
            y = self._ln(x, L + "layer_norm1", c["v_eps"])
            q = self._lin(y, L + "self_attn.q_proj").view(-1, h, hd).transpose(0, 1) * (hd ** -0.5)
            k = self._lin(y, L + "self_attn.k_proj").view(-1, h, hd).transpose(0, 1)
            v = self._lin(y, L + "self_attn.v_proj").view(-1, h, hd).transpose(0, 1)
            a = torch.softmax(q @ k.transpose(1, 2), -1)
            o = (a @ v).transpose(0, 1).reshape(-1, d)
            x = x + self._lin(o, L + "self_attn.out_proj")
            y = self._ln(x, L + "layer_norm2", c["v_eps"])
            y = self._lin(y, L + "mlp.fc1")
            y = y * torch.sigmoid(1.702 * y)
            x = x + self._lin(y, L + "mlp.fc2")
            hs.append(x)
        return hs

    def image_embeds(self, px):
        feat = self.vision_hidden_states(px)[-2][1:]
        y = self._lin(feat, "multi_modal_projector.linear_1")
        y = 0.5 * y * (1.0 + torch.erf(y / math.sqrt(2.0)))
        return self._lin(y, "multi_modal_projector.linear_2")

    def _rms(self, x, p):
        return self.W[p + ".weight"] * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["t_eps"]))

    def lm_logits(self, emb):
        """emb [T,d] (positions 0..T-1) -> logits [T,V]."""
        c, W = self.c, self.W
        T, d = emb.shape
        h, kvh = c["t_heads"], c["t_kv_heads"]
        hd = d // h
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        f = torch.arange(T, dtype=torch.int64).float()[:, None] * inv[None]
        e = torch.cat([f, f], -1)
        cos, sin = e.cos(), e.sin()

        def rope(x):  # x [H,T,hd]
            x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
            return x * cos + torch.cat([-x2, x1], -1) * sin

        mask = torch.full((T, T), float("-inf")).triu(1)
        x = emb
        for i in range(c["t_layers"]):
            L = f"language_model.model.layers.{i}."
            y = self._rms(x, L + "input_layernorm")
            q = rope(self._lin(y, L + "self_attn.q_proj", False).view(T, h, hd).transpose(0, 1))
            k = rope(self._lin(y, L + "self_attn.k_proj", False).view(T, kvh, hd).transpose(0, 1))
            v = self._lin(y, L + "self_attn.v_proj", False).view(T, kvh, hd).transpose(0, 1)
            kk = k[torch.arange(h) // (h // kvh)]   # query head j uses kv head j // (h/kvh)
            vv = v[torch.arange(h) // (h // kvh)]
            a = torch.softmax(q @ kk.transpose(1, 2) / math.sqrt(hd) + mask, -1)
            o = (a @ vv).transpose(0, 1).reshape(T, h * hd)
            x = x + self._lin(o, L + "self_attn.o_proj", False)
            y = self._rms(x, L + "post_attention_layernorm")
            g = self._lin(y, L + "mlp.gate_proj", False)
            u = self._lin(y, L + "mlp.up_proj", False)
            x = x + self._lin(F.silu(g) * u, L + "mlp.down_proj", False)
        x = self._rms(x, "language_model.model.norm")
        return x @ W["language_model.lm_head.weight"].t()

    def embed_sequence(self, input_ids, img_emb):
        E = self.W["language_model.model.embed_tokens.weight"]
        parts = []
        for t in input_ids:
            parts.append(img_emb if t == IMAGE else E[t][None])
        return torch.cat(parts, 0)

    def generate(self, input_ids, px, max_new=48):
        """Greedy, full recompute each step. Returns (last_logits_of_prefill, generated ids)."""
        img = self.image_embeds(px)
        emb = self.embed_sequence(input_ids, img)
        E = self.W["language_model.model.embed_tokens.weight"]
        first = None
        out = []
        for _ in range(max_new):
            lg = self.lm_logits(emb)[-1]
            if first is None:
                first = lg.clone()
            nxt = int(torch.argmax(lg))
            out.append(nxt)
            if nxt == EOS:
                break
            emb = torch.cat([emb, E[nxt][None]], 0)
        return first, out


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()
