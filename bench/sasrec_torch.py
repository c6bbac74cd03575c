#!/usr/bin/python3
"""Reference SASRec-style sequential recommender in PyTorch, for the benchmark of Magpie's transformer (issue 13).

Run with Debian's Python (python3-torch 1.13, python3-numpy):
    /usr/bin/python3 bench/sasrec_torch.py                          # quality run: early stopping, then test
    /usr/bin/python3 bench/sasrec_torch.py --epochs-only-timing 2   # speed row: mean training seconds per epoch

The architecture is exactly that of include/magpie/nn.h section 3 (tests/nn/make_golden.py checks the C side
against the same definition): a pre-LN causal transformer over left-padded item sequences,
    x = dropout(emb_scale * wte[inp] + wpe[t]) at real positions, 0 at padding
    per layer:  x = x + dropout(attproj(attention(qkv(ln1(x)))))
                x = x + dropout(fcproj(gelu_tanh(fc(ln2(x)))))
    out = lnf(x)
attention causal with a key padding mask (a query with no valid key outputs 0), layer norm with biased variance,
dropout only at those three places. The output layer is tied to wte: full-softmax cross-entropy over all items at
every non-padded position, mean over positions. Initialisation as mp_nn_tfm_init_weights: weights N(0, 0.02),
layer-norm weights 1, biases 0. AdamW with no weight decay on the layer norms, optional global-norm clipping.

Training data (standard SASRec): per user, the training part is the sequence without its last two items; the input
is training[:-1] and the targets training[1:], the last T kept, left-padded. One example per user per epoch, in
batches of --batch: by default grouped by length as Magpie's sasrec does (--batching length), each batch running
over the window its longest input needs (the same work as the C side; results equal those over all T positions),
or plainly shuffled (--batching random).

Evaluation (S3-Rec full-ranking protocol, ../shared/data/amazon-s3rec/SOURCE.md): per user the last item is the test
target and the second-to-last the validation target; the input is the sequence without the last two items
(validation) or the last one (test), the last T kept. The scores of all items are the output at the newest position
dotted with wte; the scores of the items in the input (the user's sequence before the target) are SET TO 0 (not
-inf), then the top 20 is taken. HR@k and NDCG@k (one relevant item) for k = 5, 10, 20, averaged over all users.
Early stopping on validation NDCG@10 (--patience, --max-epochs); test is evaluated with the parameters of the best
validation epoch.

Output: per epoch "epoch E train_s S loss L valid_ndcg10 N"; train_s times the training part only (the epoch time
to compare). Last line, machine-readable:
    RESULT torch_sasrec epochs=.. best_epoch=.. epoch_s=.. hr5=.. ndcg5=.. hr10=.. ndcg10=.. hr20=.. ndcg20=..
or, with --epochs-only-timing K:
    RESULT torch_sasrec_timing epochs=K threads=N batching=.. mean_epoch_s=<mean>
"""
import argparse
import copy
import math
import os
import sys
import time


def _threads_flag(argv, default=2):
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return str(default)


# Debian's torch calls OpenBLAS (BLAS_INFO=generic), whose own thread pool would otherwise use every core beside
# torch's OpenMP threads; it reads its thread count when loaded, so this is set before torch is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads_flag(sys.argv))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_data():
    root = os.environ.get("MAGPIE_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    return os.path.join(root, "amazon-s3rec", "Beauty.txt")


def read_sequences(path):
    """Beauty.txt: 'user item item ...' per line, items 1..I in time order. Returns lists of 0-based item ids."""
    seqs = []
    n_items = 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            items = [int(x) - 1 for x in parts[1:]]
            if min(items) < 0:
                sys.exit(f"sasrec_torch: {path}: item ids start at 1")
            n_items = max(n_items, max(items) + 1)
            seqs.append(items)
    return seqs, n_items


def left_pad(rows, T, pad):
    """rows: lists of ints -> (n, T) int64, the last T of each, right-aligned, `pad` before."""
    out = np.full((len(rows), T), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        r = r[-T:]
        if r:
            out[i, T - len(r):] = r
    return out


class SASRec(torch.nn.Module):
    def __init__(self, V, T, C, L, NH, F_, dropout, ln_eps, emb_scale):
        super().__init__()
        self.V, self.T, self.C, self.L, self.NH = V, T, C, L, NH
        self.dropout, self.ln_eps, self.emb_scale = dropout, ln_eps, emb_scale
        P = torch.nn.Parameter
        self.wte = P(torch.randn(V, C) * 0.02)
        self.wpe = P(torch.randn(T, C) * 0.02)
        self.ln1w, self.ln1b = P(torch.ones(L, C)), P(torch.zeros(L, C))
        self.qkvw, self.qkvb = P(torch.randn(L, 3 * C, C) * 0.02), P(torch.zeros(L, 3 * C))
        self.attprojw, self.attprojb = P(torch.randn(L, C, C) * 0.02), P(torch.zeros(L, C))
        self.ln2w, self.ln2b = P(torch.ones(L, C)), P(torch.zeros(L, C))
        self.fcw, self.fcb = P(torch.randn(L, F_, C) * 0.02), P(torch.zeros(L, F_))
        self.fcprojw, self.fcprojb = P(torch.randn(L, C, F_) * 0.02), P(torch.zeros(L, C))
        self.lnfw, self.lnfb = P(torch.ones(C)), P(torch.zeros(C))
        self.no_decay = ["ln1w", "ln1b", "ln2w", "ln2b", "lnfw", "lnfb"]

    def attention(self, qkv, bias, row_ok):
        """qkv (B,T,3C); bias (B,1,T,T) 0 where key s <= t is real, -1e9 elsewhere (finite: a query with no valid
        key stays NaN-free); row_ok (B,1,T,1) zeroes those queries' output explicitly."""
        B, T, _ = qkv.shape
        C, NH = self.C, self.NH
        hs = C // NH
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, NH, hs).transpose(1, 2)
        k = k.view(B, T, NH, hs).transpose(1, 2)
        v = v.view(B, T, NH, hs).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hs)) + bias
        att = torch.softmax(scores, dim=-1) * row_ok
        return (att @ v).transpose(1, 2).reshape(B, T, C)

    def forward(self, inp, t0=0):
        """inp (B, T - t0) int64 with -1 = padding, holding positions t0..T-1 (the leading all-padding columns may
        be cut off: they influence nothing). Returns out (B, T - t0, C)."""
        p = self.dropout if self.training else 0.0
        valid = inp >= 0
        x = self.emb_scale * self.wte[inp.clamp(min=0)] + self.wpe[t0:][None]
        x = F.dropout(x * valid[..., None], p, self.training)
        C, T = self.C, inp.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        allowed = causal[None, None] & valid[:, None, None, :]  # (B,1,T,T): query t may attend key s
        bias = torch.zeros(allowed.shape).masked_fill_(~allowed, -1e9)
        row_ok = allowed.any(dim=-1, keepdim=True).to(x.dtype)
        for l in range(self.L):
            h = F.layer_norm(x, (C,), self.ln1w[l], self.ln1b[l], self.ln_eps)
            y = self.attention(F.linear(h, self.qkvw[l], self.qkvb[l]), bias.to(x.dtype), row_ok)
            x = x + F.dropout(F.linear(y, self.attprojw[l], self.attprojb[l]), p, self.training)
            h = F.layer_norm(x, (C,), self.ln2w[l], self.ln2b[l], self.ln_eps)
            h = F.gelu(F.linear(h, self.fcw[l], self.fcb[l]), approximate="tanh")
            x = x + F.dropout(F.linear(h, self.fcprojw[l], self.fcprojb[l]), p, self.training)
        return F.layer_norm(x, (C,), self.lnfw, self.lnfb, self.ln_eps)


def epoch_batches(lengths, batch, rng, batching):
    """The batches of one epoch, as arrays of user indices. random: users shuffled, cut into batches. length (as
    Magpie's sasrec, src/models/sasrec.c sr_epoch_batches): users shuffled, sorted by input length (longest first,
    then by index) within groups of 32 batches, cut into batches, and the batches visited in shuffled order, so a
    batch's window is about its longest sequence."""
    order = rng.permutation(len(lengths))
    if batching == "length":
        group = 32 * batch
        for g in range(0, len(order), group):
            part = order[g:g + group]
            order[g:g + group] = part[np.lexsort((part, -lengths[part]))]
    batches = [order[s:s + batch] for s in range(0, len(order), batch)]
    if batching == "length":
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def train_epoch(model, opt, inp_all, tgt_all, lengths, batch, max_norm, rng, batching):
    """One pass; each batch runs over the newest max(its input lengths) positions only (the leading all-padding
    columns change nothing: position t of a window of W uses wpe[T - W + t], as mp_nn_tfm_forward_len)."""
    model.train()
    T = inp_all.shape[1]
    total, count = 0.0, 0
    for idx in epoch_batches(lengths, batch, rng, batching):
        t0 = T - max(1, int(lengths[idx].max()))
        inp = torch.from_numpy(inp_all[idx, t0:])
        tgt = torch.from_numpy(tgt_all[idx, t0:])
        out = model(inp, t0)
        keep = tgt >= 0
        h = out[keep]  # only the positions with a target: (n, C)
        logits = h @ model.wte.t()
        loss = F.cross_entropy(logits, tgt[keep])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
        n = int(keep.sum())
        total += float(loss) * n
        count += n
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model, inputs, histories, targets, chunk=512):
    """inputs (U,T) left-padded; histories: per user the item ids whose scores are set to 0; targets (U,).
    Users are processed in order of input length so the leading all-padding columns can be cut."""
    model.eval()
    T = inputs.shape[1]
    lengths = (inputs >= 0).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    ks = (5, 10, 20)
    hr = {k: 0.0 for k in ks}
    ndcg = {k: 0.0 for k in ks}
    for s in range(0, len(order), chunk):
        idx = order[s:s + chunk]
        t0 = T - max(1, int(lengths[idx].max()))
        out = model(torch.from_numpy(inputs[idx, t0:]), t0)[:, -1]  # (n, C), newest position
        scores = out @ model.wte.t()
        rows = np.concatenate([np.full(len(histories[u]), i) for i, u in enumerate(idx)])
        cols = np.concatenate([histories[u] for u in idx])
        scores[torch.from_numpy(rows), torch.from_numpy(cols)] = 0.0
        top = torch.topk(scores, 20, dim=1).indices  # sorted by score, best first
        hit = top == torch.from_numpy(targets[idx])[:, None]
        found = hit.any(dim=1)
        rank = hit.float().argmax(dim=1)  # valid where found
        for k in ks:
            in_k = found & (rank < k)
            hr[k] += float(in_k.sum())
            ndcg[k] += float((1.0 / torch.log2(rank[in_k].double() + 2.0)).sum())
    n = len(order)
    return {f"hr{k}": hr[k] / n for k in ks} | {f"ndcg{k}": ndcg[k] / n for k in ks}


def main():
    ap = argparse.ArgumentParser(description="PyTorch SASRec reference (issue 13)")
    ap.add_argument("--data", default=default_data())
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--ffn-dim", type=int, default=0, help="0 = 4 * dim")
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--ln-eps", type=float, default=1e-5, help="1e-5 as Magpie's sasrec (SASRec's code: 1e-8)")
    ap.add_argument("--emb-scale", type=float, default=0.0, help="0 = sqrt(dim)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batching", choices=("length", "random"), default="length",
                    help="length: batches of similar length as Magpie's sasrec; random: plain shuffled batches")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.98)
    ap.add_argument("--adam-eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--max-norm", type=float, default=0.0, help="global gradient-norm clipping; 0 = off")
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=10, help="epochs without a better valid NDCG@10")
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop after the epoch that passes this much wall time (0 = no limit); test still runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs-only-timing", type=int, default=0, metavar="K",
                    help="train K epochs, print the mean training seconds per epoch, no evaluation")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    ffn = a.ffn_dim or 4 * a.dim
    emb_scale = a.emb_scale or math.sqrt(a.dim)
    if a.dim % a.heads:
        sys.exit("sasrec_torch: --heads must divide --dim")

    seqs, V = read_sequences(a.data)
    T = a.max_len
    train_parts = [s[:-2] for s in seqs]
    tr_inp = left_pad([s[:-1] for s in train_parts], T, -1)
    tr_tgt = left_pad([s[1:] for s in train_parts], T, -1)
    tr_len = (tr_inp >= 0).sum(axis=1)
    va_inp = left_pad([s[:-2] for s in seqs], T, -1)
    te_inp = left_pad([s[:-1] for s in seqs], T, -1)
    va_hist = [np.array(s[:-2], dtype=np.int64) for s in seqs]
    te_hist = [np.array(s[:-1], dtype=np.int64) for s in seqs]
    va_tgt = np.array([s[-2] for s in seqs], dtype=np.int64)
    te_tgt = np.array([s[-1] for s in seqs], dtype=np.int64)

    model = SASRec(V, T, a.dim, a.layers, a.heads, ffn, a.dropout, a.ln_eps, emb_scale)
    named = dict(model.named_parameters())
    decay = [p for n, p in named.items() if n not in model.no_decay]
    nodecay = [p for n, p in named.items() if n in model.no_decay]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(a.beta1, a.beta2), eps=a.adam_eps)
    n_par = sum(p.numel() for p in model.parameters())
    print(f"config: data={a.data} users={len(seqs)} items={V} train_targets={int((tr_tgt >= 0).sum())} T={T} "
          f"dim={a.dim} layers={a.layers} heads={a.heads} ffn_dim={ffn} dropout={a.dropout} ln_eps={a.ln_eps:g} "
          f"emb_scale={emb_scale:g} batch={a.batch} batching={a.batching} lr={a.lr:g} betas=({a.beta1:g},{a.beta2:g}) "
          f"adam_eps={a.adam_eps:g} weight_decay={a.weight_decay:g} max_norm={a.max_norm:g} "
          f"max_epochs={a.max_epochs} patience={a.patience} threads={a.threads} seed={a.seed} params={n_par} "
          f"openblas_threads={os.environ.get('OPENBLAS_NUM_THREADS')} torch={torch.__version__}", flush=True)

    if a.epochs_only_timing > 0:
        times = []
        for e in range(1, a.epochs_only_timing + 1):
            t = time.perf_counter()
            loss = train_epoch(model, opt, tr_inp, tr_tgt, tr_len, a.batch, a.max_norm, rng, a.batching)
            times.append(time.perf_counter() - t)
            print(f"epoch {e} train_s {times[-1]:.2f} loss {loss:.4f}", flush=True)
        print(f"RESULT torch_sasrec_timing epochs={len(times)} threads={a.threads} batching={a.batching} "
              f"mean_epoch_s={sum(times) / len(times):.3f}")
        return 0

    best, best_epoch, best_state, times = -1.0, 0, None, []
    started = time.perf_counter()
    for e in range(1, a.max_epochs + 1):
        t = time.perf_counter()
        loss = train_epoch(model, opt, tr_inp, tr_tgt, tr_len, a.batch, a.max_norm, rng, a.batching)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        m = evaluate(model, va_inp, va_hist, va_tgt)
        print(f"epoch {e} train_s {times[-1]:.2f} loss {loss:.4f} valid_ndcg10 {m['ndcg10']:.4f} "
              f"valid_hr10 {m['hr10']:.4f} eval_s {time.perf_counter() - t:.2f}", flush=True)
        if m["ndcg10"] > best:
            best, best_epoch, best_state = m["ndcg10"], e, copy.deepcopy(model.state_dict())
        elif e - best_epoch >= a.patience:
            break
        if a.max_minutes > 0 and time.perf_counter() - started > 60 * a.max_minutes:
            print(f"stopping: --max-minutes {a.max_minutes:g} passed", flush=True)
            break
    model.load_state_dict(best_state)
    v = evaluate(model, va_inp, va_hist, va_tgt)
    r = evaluate(model, te_inp, te_hist, te_tgt)
    print("valid at best epoch: " + " ".join(f"{k}={v[k]:.4f}" for k in v))
    print(f"RESULT torch_sasrec epochs={len(times)} best_epoch={best_epoch} "
          f"epoch_s={sum(times) / len(times):.3f} " + " ".join(f"{k}={r[k]:.4f}" for k in r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
