#!/usr/bin/env python3
"""Reference implicit-feedback ALS with conjugate gradient, written with PyTorch, for bench/speed.sh.

The same algorithm as Magpie's `als` model (Hu, Koren and Volinsky 2008; CG per Takacs et al. 2011):
confidence c = 1 + alpha * r, preference 1 on the non-zeros; each half-sweep solves every row of X against
fixed Y with `cg_steps` CG iterations warm-started from the previous X, using
    A x = (YtY + reg I) x + sum_j alpha r_j (y_j . x) y_j,   b = sum_j c_j y_j
(only a row's non-zeros are touched). Rows are processed in vectorised chunks (gather Y rows of the chunk's
non-zeros, segment sums with index_add_), which is how one writes this efficiently in PyTorch.

Reads the matrix file written by `als_speed --write FILE`:
    "MPALSMAT" | u32 n_users | u32 n_items | u64 nnz | u64 ptr[n_users + 1] | u32 idx[nnz] | f32 val[nnz]
Prints "key value" lines: torch_k64_sec_per_iter 12.3 ...
"""
import argparse
import sys
import time

import numpy as np
import torch


def read_matrix(path):
    with open(path, "rb") as f:
        if f.read(8) != b"MPALSMAT":
            sys.exit(f"torch_als: {path}: not a matrix file written by als_speed --write")
        n_users, n_items = (int(v) for v in np.frombuffer(f.read(8), dtype="<u4"))
        nnz = int(np.frombuffer(f.read(8), dtype="<u8")[0])
        ptr = np.fromfile(f, dtype="<u8", count=n_users + 1).astype(np.int64)
        idx = np.fromfile(f, dtype="<u4", count=nnz).astype(np.int64)
        val = np.fromfile(f, dtype="<f4", count=nnz)
    if len(val) != nnz or ptr[-1] != nnz:
        sys.exit(f"torch_als: {path}: truncated")
    return n_users, n_items, ptr, idx, val


def transpose(n_rows, n_cols, ptr, idx, val):
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(ptr))
    order = np.argsort(idx, kind="stable")
    tptr = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(idx, minlength=n_cols), out=tptr[1:])
    return tptr, rows[order], val[order]


class Side:
    """One half-sweep's rows: CSR pieces as torch tensors plus chunk boundaries by non-zero budget."""

    def __init__(self, ptr, idx, val, nnz_per_chunk):
        self.n = len(ptr) - 1
        self.ptr = ptr
        self.idx = torch.from_numpy(idx)
        self.val = torch.from_numpy(val)
        self.row = torch.from_numpy(np.repeat(np.arange(self.n, dtype=np.int64), np.diff(ptr)))
        self.empty = torch.from_numpy(np.diff(ptr) == 0)
        bounds = [0]
        while bounds[-1] < self.n:
            r0 = bounds[-1]
            r1 = int(np.searchsorted(ptr, ptr[r0] + nnz_per_chunk, side="right")) - 1
            bounds.append(min(self.n, max(r1, r0 + 1)))
        self.bounds = bounds


def solve_side(X, Y, side, alpha, reg, steps):
    k = Y.shape[1]
    G = Y.T @ Y + reg * torch.eye(k, dtype=Y.dtype)
    for r0, r1 in zip(side.bounds[:-1], side.bounds[1:]):
        b, e = int(side.ptr[r0]), int(side.ptr[r1])
        rows = side.row[b:e] - r0
        Yg = Y.index_select(0, side.idx[b:e])  # (z, k)
        cm1 = alpha * side.val[b:e]
        x = X[r0:r1]
        n = r1 - r0

        def seg_sum(w):  # sum over each row's non-zeros of w_j * y_j
            return torch.zeros(n, k, dtype=Y.dtype).index_add_(0, rows, w.unsqueeze(1) * Yg)

        r = seg_sum(1 + cm1 - cm1 * (Yg * x.index_select(0, rows)).sum(1)) - x @ G
        p = r.clone()
        rs = (r * r).sum(1)
        for _ in range(steps):
            Ap = p @ G + seg_sum(cm1 * (Yg * p.index_select(0, rows)).sum(1))
            pAp = (p * Ap).sum(1)
            a = torch.where(pAp > 0, rs / pAp.clamp_min(1e-30), torch.zeros_like(rs))
            x = x + a.unsqueeze(1) * p
            r = r - a.unsqueeze(1) * Ap
            rs_new = (r * r).sum(1)
            beta = torch.where(rs > 1e-20, rs_new / rs.clamp_min(1e-30), torch.zeros_like(rs))
            p = r + beta.unsqueeze(1) * p
            rs = rs_new
        X[r0:r1] = x
    X[side.empty] = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--matrix", required=True)
    ap.add_argument("--factors", default="64,128")
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cg-steps", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--chunk-nnz", type=int, default=1 << 17)  # fastest of 2^15..2^21 here
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n_users, n_items, ptr, idx, val = read_matrix(args.matrix)
    tptr, tidx, tval = transpose(n_users, n_items, ptr, idx, val)
    users = Side(ptr, idx, val, args.chunk_nnz)
    items = Side(tptr, tidx, tval, args.chunk_nnz)
    print(f"torch_version {torch.__version__}\ntorch_threads {torch.get_num_threads()}", flush=True)
    for k in (int(v) for v in args.factors.split(",")):
        g = torch.Generator().manual_seed(1)
        X = torch.randn(n_users, k, generator=g) * 0.01
        Y = torch.randn(n_items, k, generator=g) * 0.01
        times = []
        for _ in range(args.iters):
            t = time.perf_counter()
            solve_side(X, Y, users, args.alpha, args.reg, args.cg_steps)
            solve_side(Y, X, items, args.alpha, args.reg, args.cg_steps)
            times.append(time.perf_counter() - t)
        print(f"torch_k{k}_sec_per_iter {sum(times) / len(times):.3f}\ntorch_k{k}_best_iter {min(times):.3f}",
              flush=True)


if __name__ == "__main__":
    main()
