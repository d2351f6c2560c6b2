#!/usr/bin/python3
"""Golden values for the Java vision graphs: a random tiny LLaVA-1.5 vision tower + projector.

Independent reference: a direct torch transcription of Hugging Face transformers'
CLIPVisionEmbeddings / CLIPEncoderLayer / LlavaMultiModalProjector (eager attention) and
LlavaForConditionalGeneration.get_image_features (vision_feature_layer, select strategy).
Debian bookworm python3-torch 1.13, numpy 1.24. Run from the repository root:

    /usr/bin/python3 runtime/src/test/python/gen_vision_golden.py

Writes runtime/src/test/resources/vision/{config.json, model.safetensors, golden.safetensors,
golden.json}.
"""
import json
import os

import numpy as np
import torch

torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "vision")
os.makedirs(OUT, exist_ok=True)

D, I, L, H, S, P, DT = 32, 64, 3, 4, 32, 8, 48
EPS = 1e-5
cfg = {
    "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
    "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
    "projector_hidden_act": "gelu", "image_token_index": 4,
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": D, "intermediate_size": I,
                      "num_hidden_layers": L, "num_attention_heads": H, "image_size": S,
                      "patch_size": P, "hidden_act": "quick_gelu", "layer_norm_eps": EPS,
                      "num_channels": 3},
    "text_config": {"model_type": "llama", "hidden_size": DT},
}
N = (S // P) ** 2
T = N + 1

W = {}


def param(name, *shape, scale=0.2):
    W[name] = (torch.randn(*shape) * scale).float()
    return W[name]


V = "vision_tower.vision_model."
param(V + "embeddings.class_embedding", D, scale=0.5)
param(V + "embeddings.patch_embedding.weight", D, 3, P, P, scale=0.1)
param(V + "embeddings.position_embedding.weight", T, D, scale=0.3)
for n in ["pre_layrnorm"]:
    W[V + n + ".weight"] = 1 + 0.1 * torch.randn(D)
    W[V + n + ".bias"] = 0.1 * torch.randn(D)
for i in range(L):
    p = V + f"encoder.layers.{i}."
    for proj in ["q_proj", "k_proj", "v_proj", "out_proj"]:
        param(p + f"self_attn.{proj}.weight", D, D)
        param(p + f"self_attn.{proj}.bias", D, scale=0.05)
    for ln in ["layer_norm1", "layer_norm2"]:
        W[p + ln + ".weight"] = 1 + 0.1 * torch.randn(D)
        W[p + ln + ".bias"] = 0.1 * torch.randn(D)
    param(p + "mlp.fc1.weight", I, D)
    param(p + "mlp.fc1.bias", I, scale=0.05)
    param(p + "mlp.fc2.weight", D, I)
    param(p + "mlp.fc2.bias", D, scale=0.05)
W[V + "post_layernorm.weight"] = torch.ones(D)  # present in HF checkpoints, unused by LLaVA
W[V + "post_layernorm.bias"] = torch.zeros(D)
param("multi_modal_projector.linear_1.weight", DT, D)
param("multi_modal_projector.linear_1.bias", DT, scale=0.05)
param("multi_modal_projector.linear_2.weight", DT, DT)
param("multi_modal_projector.linear_2.bias", DT, scale=0.05)


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def layer_norm(x, name):
    return torch.nn.functional.layer_norm(x, (D,), W[name + ".weight"], W[name + ".bias"], EPS)


def linear(x, name):
    return x @ W[name + ".weight"].T + W[name + ".bias"]


def embeddings(px):
    pe = torch.nn.functional.conv2d(px, W[V + "embeddings.patch_embedding.weight"], stride=P)
    pe = pe.flatten(2).transpose(1, 2)
    cls = W[V + "embeddings.class_embedding"].expand(px.shape[0], 1, -1)
    x = torch.cat([cls, pe], dim=1) + W[V + "embeddings.position_embedding.weight"][None]
    return layer_norm(x, V + "pre_layrnorm")


def layer(x, i, keep=None):
    """One CLIPEncoderLayer; returns (output, cls attention row head-averaged)."""
    p = V + f"encoder.layers.{i}."
    b, t, _ = x.shape
    h = layer_norm(x, p + "layer_norm1")
    q = linear(h, p + "self_attn.q_proj").view(b, t, H, D // H).transpose(1, 2)
    k = linear(h, p + "self_attn.k_proj").view(b, t, H, D // H).transpose(1, 2)
    v = linear(h, p + "self_attn.v_proj").view(b, t, H, D // H).transpose(1, 2)
    a = torch.softmax((q @ k.transpose(-1, -2)) * (D // H) ** -0.5, dim=-1)
    cls_row = a[0, :, 0, :].mean(0)
    o = (a @ v).transpose(1, 2).reshape(b, t, D)
    x = x + linear(o, p + "self_attn.out_proj")
    y = linear(layer_norm(x, p + "layer_norm2"), p + "mlp.fc1")
    y = y * torch.sigmoid(1.702 * y)
    return x + linear(y, p + "mlp.fc2"), cls_row


def projector(x):
    y = linear(x, "multi_modal_projector.linear_1")
    y = torch.nn.functional.gelu(y)
    return linear(y, "multi_modal_projector.linear_2")


px = torch.randn(2, 3, S, S)
golden = {"pixel_values": px}
meta = {"cases": []}
with torch.no_grad():
    for n in range(2):
        x = embeddings(px[n:n + 1])
        hidden = [x]
        for i in range(L):
            x, row = layer(x, i)
            hidden.append(x)
            golden[f"img{n}.cls_attention.{i}"] = row
        feats = hidden[-2][:, 1:]  # vision_feature_layer -2, default strategy drops CLS
        golden[f"img{n}.image_features"] = projector(feats)[0]
        # Drop case: after layer 0 keep CLS + the patches at even positions, then layers 1.. and projector.
        keep = [0] + [j for j in range(1, T) if j % 2 == 0]
        y = hidden[1][:, keep]
        y, _ = layer(y, 1)
        golden[f"img{n}.image_features_keep_even_after0"] = projector(y[:, 1:])[0]
        meta["cases"].append({"image": n, "keep_after_layer0": keep})

save_safetensors(os.path.join(OUT, "model.safetensors"), W)
save_safetensors(os.path.join(OUT, "golden.safetensors"), golden)
with open(os.path.join(OUT, "config.json"), "w") as f:
    json.dump(cfg, f, indent=1)
with open(os.path.join(OUT, "golden.json"), "w") as f:
    json.dump({"generator": "gen_vision_golden.py", "torch": torch.__version__, **meta}, f, indent=1)
print("wrote", len(W), "weights,", len(golden), "golden tensors")
