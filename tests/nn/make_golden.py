#!/usr/bin/python3
"""Writes tests/nn/golden_step.bin: one training step of the causal transformer of include/magpie/nn.h section 3,
computed by PyTorch in float64, for tests/test_nn_golden.c.

Run with Debian's Python (python3-torch, python3-numpy):   /usr/bin/python3 tests/nn/make_golden.py
The output is deterministic for a given --seed (PyTorch 1.13 CPU).

The model (nn.h section 3, dropout 0):
    x = emb_scale * wte[inp] + wpe[t] at real positions (inp != PAD), 0 at padding
    per layer:  x = x + attproj(attention(qkv(ln1(x))))
                x = x + fcproj(gelu_tanh(fc(ln2(x))))
    out = lnf(x)
attention: causal with a key padding mask; query t attends keys s <= t that are real, weights
softmax_s(q_t . k_s / sqrt(hs)); a query with no valid key outputs 0. qkv rows are [q (C) | k (C) | v (C)], head h
uses channels h*hs .. (h+1)*hs of each part, heads are concatenated in that order. Layer norm: biased variance, eps.
Loss: logits = out . wte^T (the output layer tied to wte), cross-entropy over all V items, mean over positions whose
target != PAD. Then the global gradient norm is clipped to max_norm (factor min(1, max_norm / norm), as
mp_nn_clip_factor) and one AdamW step (t = 1) is taken, with weight decay on every tensor except the layer norms'
(ln1w, ln1b, ln2w, ln2b, lnfw, lnfb).

File format (little-endian, no padding between fields):
    char[8]   magic "MPNNGOLD"
    u32       version (1)
    u32 x 6   config: n_vocab V, max_len T, dim C, n_layers L, n_heads NH, ffn_dim F
    f32 x 3   config: dropout (0), ln_eps, emb_scale           (the order of mp_nn_tfm_config)
    u32       B, the batch
    u32       inp (B,T)      item ids < V or PAD = 0xFFFFFFFF, left-padded
    u32       targets (B,T)  the same alphabet
    f32 x 6   optimiser: lr, beta1, beta2, eps, weight_decay, max_norm
    u32       step t of the AdamW update (1)
    f32       the 16 parameter tensors before the step, in MP_NN_TFM order:
              wte (V,C) wpe (T,C) ln1w (L,C) ln1b (L,C) qkvw (L,3C,C) qkvb (L,3C) attprojw (L,C,C) attprojb (L,C)
              ln2w (L,C) ln2b (L,C) fcw (L,F,C) fcb (L,F) fcprojw (L,C,F) fcprojb (L,C) lnfw (C) lnfb (C)
    f32       out (B,T,C), the forward output (lnf), for locating a mismatch
    f64       loss (the mean)
    f32       the 16 gradients (same order and shapes), BEFORE clipping
    f64       the global gradient norm before clipping
    f32       the 16 parameter tensors after the update
The parameters are float32 values (drawn, then rounded to float32) so the C side starts from exactly the same point.

AdamW eps: the default is 1e-3, not 1e-8, on purpose. At t = 1 the AdamW step is lr * g / (|g| + eps) (+ decay);
with eps = 1e-8 that is lr * sign(g), which does not depend on the clipping factor at all (clipping would be
untested) and is ill-conditioned for the rare gradient elements near 1e-8 (a float32 rounding of g could flip a
whole lr-sized step). With eps = 1e-3, comparable to the clipped gradient elements, the step depends on the clip
factor and is well-conditioned. The file stores the eps, so the C test uses whatever was written.
"""
import argparse
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

PAD = 0xFFFFFFFF
NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
NO_DECAY = {"ln1w", "ln1b", "ln2w", "ln2b", "lnfw", "lnfb"}


def shapes(V, T, C, L, F_):
    return {"wte": (V, C), "wpe": (T, C), "ln1w": (L, C), "ln1b": (L, C), "qkvw": (L, 3 * C, C), "qkvb": (L, 3 * C),
            "attprojw": (L, C, C), "attprojb": (L, C), "ln2w": (L, C), "ln2b": (L, C), "fcw": (L, F_, C),
            "fcb": (L, F_), "fcprojw": (L, C, F_), "fcprojb": (L, C), "lnfw": (C,), "lnfb": (C,)}


def init_params(shp, gen):
    """Values that make the test sensitive: weights std 0.1-0.2, layer norm weights 1 +- 0.2, biases std 0.1.
    Drawn in float64, rounded to float32 (what the file stores), used as float64."""
    p = {}
    for name in NAMES:
        s = shp[name]
        if name in ("ln1w", "ln2w", "lnfw"):
            v = 1.0 + 0.2 * torch.randn(s, generator=gen, dtype=torch.float64)
        elif name.endswith("b"):
            v = 0.1 * torch.randn(s, generator=gen, dtype=torch.float64)
        elif name == "qkvw":
            v = 0.2 * torch.randn(s, generator=gen, dtype=torch.float64)
        else:
            v = 0.1 * torch.randn(s, generator=gen, dtype=torch.float64)
        p[name] = v.float().double().requires_grad_(True)
    return p


def attention(qkv, valid, NH):
    """qkv (B,T,3C), valid (B,T) bool -> out (B,T,C), att (B,NH,T,T). Rows with no valid key are set to 0
    explicitly (no -inf row reaches the softmax, so neither the output nor the gradient can be NaN)."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // NH
    q, k, v = qkv.split(C, dim=2)
    q = q.view(B, T, NH, hs).transpose(1, 2)  # (B,NH,T,hs)
    k = k.view(B, T, NH, hs).transpose(1, 2)
    v = v.view(B, T, NH, hs).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B,NH,T,T)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    mask = causal[None, None, :, :] & valid[:, None, None, :]  # key s is allowed for query t
    row_ok = mask.any(dim=-1, keepdim=True)  # (B,1,T,1)
    scores = scores.masked_fill(~mask, float("-inf"))
    scores = torch.where(row_ok, scores, torch.zeros_like(scores))  # an empty row: finite, then zeroed below
    att = torch.softmax(scores, dim=-1) * row_ok
    out = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
    return out, att


def layernorm(x, w, b, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def forward(p, inp, cfg):
    """inp (B,T) int64 with PAD as -1. Returns out (B,T,C) and the per-layer attention outputs (for checks)."""
    V, T, C, L, NH, F_, dropout, ln_eps, emb_scale = cfg
    valid = inp >= 0
    idx = torch.where(valid, inp, torch.zeros_like(inp))
    x = (emb_scale * p["wte"][idx] + p["wpe"][None, :, :]) * valid[:, :, None]
    attys = []
    for l in range(L):
        h = layernorm(x, p["ln1w"][l], p["ln1b"][l], ln_eps)
        qkv = F.linear(h, p["qkvw"][l], p["qkvb"][l])
        y, _ = attention(qkv, valid, NH)
        attys.append(y)
        x = x + F.linear(y, p["attprojw"][l], p["attprojb"][l])
        h = layernorm(x, p["ln2w"][l], p["ln2b"][l], ln_eps)
        h = F.gelu(F.linear(h, p["fcw"][l], p["fcb"][l]), approximate="tanh")
        x = x + F.linear(h, p["fcprojw"][l], p["fcprojb"][l])
    return layernorm(x, p["lnfw"], p["lnfb"], ln_eps), attys


def loss_fn(out, wte, targets):
    """Full-softmax cross-entropy tied to wte, mean over targets != PAD (-1)."""
    B, T, C = out.shape
    logits = out.reshape(B * T, C) @ wte.t()
    return F.cross_entropy(logits, targets.reshape(B * T), ignore_index=-1, reduction="mean")


def check_empty_row_mask():
    """The explicit masking: a query with no valid key gives exactly 0 output, and no NaN anywhere (forward or
    backward); a query with valid keys is a proper softmax over exactly those keys."""
    gen = torch.Generator().manual_seed(7)
    B, T, C, NH = 2, 4, 6, 2
    qkv = torch.randn(B, T, 3 * C, generator=gen, dtype=torch.float64, requires_grad=True)
    valid = torch.tensor([[False, False, True, True], [True, True, True, True]])
    out, att = attention(qkv, valid, NH)
    assert torch.equal(out[0, :2], torch.zeros(2, C, dtype=torch.float64)), "padded queries must output exactly 0"
    assert torch.equal(att[0, :, :2], torch.zeros(NH, 2, T, dtype=torch.float64)), "padded queries: att 0"
    assert torch.allclose(att[0, :, 2:, 2:].sum(-1), torch.ones(NH, 2, dtype=torch.float64))
    assert torch.all(att[0, :, :, :2] == 0), "padded keys get no weight"
    assert torch.all(att[1].triu(1) == 0), "no attention to the future"
    out.pow(2).sum().backward()
    assert torch.isfinite(qkv.grad).all(), "NaN/inf in the gradient"
    assert torch.equal(qkv.grad[0, :2], torch.zeros(2, 3 * C, dtype=torch.float64)), "padding gets no gradient"
    # The unmasked rows against a plain softmax.
    hs = C // NH
    q = qkv[1, :, :C].view(T, NH, hs)[:, 0]
    k = qkv[1, :, C:2 * C].view(T, NH, hs)[:, 0]
    s = (q[3] @ k.t()) / math.sqrt(hs)
    assert torch.allclose(att[1, 0, 3], torch.softmax(s, dim=0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/nn/golden_step.bin")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--adam-eps", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    check_empty_row_mask()

    V, T, C, L, NH, F_ = 37, 7, 16, 2, 2, 24
    dropout, ln_eps, emb_scale = 0.0, 1e-5, 4.0
    # ln_eps and emb_scale as the float32 values the file stores.
    ln_eps = float(np.float32(ln_eps))
    cfg = (V, T, C, L, NH, F_, dropout, ln_eps, emb_scale)
    P = -1
    # Sequence 0: full length, a repeated item, item 0, and a PAD target at a real position (the newest item's
    # next item is unknown). Sequence 1: three leading pads. Sequence 2: a single item.
    inp = torch.tensor([[5, 0, 12, 5, 36, 20, 3],
                        [P, P, P, 8, 17, 8, 30],
                        [P, P, P, P, P, P, 24]], dtype=torch.int64)
    targets = torch.tensor([[0, 12, 5, 36, 20, 3, P],
                            [P, P, P, 17, 8, 30, 1],
                            [P, P, P, P, P, P, 11]], dtype=torch.int64)
    B = inp.shape[0]
    shp = shapes(V, T, C, L, F_)
    gen = torch.Generator().manual_seed(args.seed)
    p = init_params(shp, gen)
    init = {n: p[n].detach().clone() for n in NAMES}

    out, attys = forward(p, inp, cfg)
    for y in attys:  # padded queries of this left-padded batch have no valid key
        assert torch.equal(y[~(inp >= 0)], torch.zeros_like(y[~(inp >= 0)]))
    loss = loss_fn(out, p["wte"], targets)
    loss.backward()
    grads = {n: p[n].grad.detach().clone() for n in NAMES}
    for n in NAMES:
        assert torch.isfinite(grads[n]).all(), n
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    max_norm = float(np.float32(0.5 * norm))
    clip = min(1.0, max_norm / norm)
    assert clip < 0.6, "clipping must be active"

    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.98, args.adam_eps, 0.1
    # The optimiser settings as the float32 values the file stores.
    lr, b1, b2, eps, wd = (float(np.float32(v)) for v in (lr, b1, b2, eps, wd))
    for n in NAMES:
        p[n].grad.mul_(clip)
    decay = [p[n] for n in NAMES if n not in NO_DECAY]
    nodecay = [p[n] for n in NAMES if n in NO_DECAY]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=lr, betas=(b1, b2), eps=eps)
    opt.step()
    after = {n: p[n].detach().clone() for n in NAMES}
    # The same step from nn.h's formula, as a check on how torch.optim.AdamW was configured.
    for n in NAMES:
        g = grads[n] * clip
        m, v = (1 - b1) * g, (1 - b2) * g * g
        w = wd if n not in NO_DECAY else 0.0
        ref = init[n] - lr * (m / (1 - b1)) / (torch.sqrt(v / (1 - b2)) + eps) - lr * w * init[n]
        assert torch.allclose(ref, after[n], rtol=0, atol=1e-12), n

    # The test must be able to see each part of the update: the step without clipping, with decay on the layer
    # norms too, or without any decay must each move some tensor by well over the C test's tolerance (1e-4 of the
    # tensor's max-norm).
    def step_with(c, decay_of):
        res = {}
        for n in NAMES:
            g = grads[n] * c
            m, v = (1 - b1) * g, (1 - b2) * g * g
            res[n] = init[n] - lr * (m / (1 - b1)) / (torch.sqrt(v / (1 - b2)) + eps) - lr * decay_of(n) * init[n]
        return res

    def worst_rel(res):
        return max(float((res[n] - after[n]).abs().max() / after[n].abs().max()) for n in NAMES)

    variants = {"no clipping": step_with(1.0, lambda n: wd if n not in NO_DECAY else 0.0),
                "decay on layer norms": step_with(clip, lambda n: wd),
                "no decay": step_with(clip, lambda n: 0.0)}
    for what, res in variants.items():
        r = worst_rel(res)
        print(f"sensitivity: {what} would be off by {r:.2e} (relative, worst tensor)")
        assert r > 1e-3, f"the golden step cannot tell '{what}' apart"

    f32 = lambda t: t.detach().numpy().astype("<f4").tobytes()
    u32 = lambda t: np.where(t.numpy() < 0, PAD, t.numpy()).astype("<u4").tobytes()
    blob = bytearray(b"MPNNGOLD")
    blob += struct.pack("<I", 1)
    blob += struct.pack("<6I", V, T, C, L, NH, F_)
    blob += struct.pack("<3f", dropout, ln_eps, emb_scale)
    blob += struct.pack("<I", B)
    blob += u32(inp) + u32(targets)
    blob += struct.pack("<6f", lr, b1, b2, eps, wd, max_norm)
    blob += struct.pack("<I", 1)
    for n in NAMES:
        blob += f32(init[n])
    blob += f32(out)
    blob += struct.pack("<d", float(loss))
    for n in NAMES:
        blob += f32(grads[n])
    blob += struct.pack("<d", norm)
    for n in NAMES:
        blob += f32(after[n])
    with open(args.out, "wb") as f:
        f.write(blob)

    n_par = sum(int(np.prod(shp[n])) for n in NAMES)
    count = int((targets >= 0).sum())
    print(f"wrote {args.out}: {len(blob)} bytes, {n_par} parameters, {count} targets, loss {float(loss):.6f}, "
          f"grad norm {norm:.6f}, max_norm {max_norm:.6f} (clip factor {clip:.4f}), adam eps {eps:g}")
    # The key bias's gradient is 0 in exact arithmetic (softmax ignores a constant added to every key's score); in
    # float32 it is rounding noise, which AdamW with eps = 1e-8 would turn into steps of up to lr.
    kb = float(grads["qkvb"][:, C:2 * C].abs().max())
    print(f"max |grad| of the key bias (0 in exact arithmetic): {kb:.3g}")
    mags = ", ".join(f"{n} {float(grads[n].abs().max()):.3g}" for n in NAMES)
    print(f"max |grad| per tensor: {mags}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
