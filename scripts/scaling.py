#!/usr/bin/python3
"""scaling.py - the alpha-beta projection of docs/scaling.md: images/s and scaling
efficiency of data-parallel DIM(L) training on N machines like this one (2 cores).

usage: scripts/scaling.py [--svg PATH]   (prints the markdown tables; --svg writes the plot)

Weak scaling: every machine takes 64 images a step (one rank of 2 threads, or 2 ranks of
1), so the global batch is B = 64 N and every image is scored against all B (DIM's
all-pairs negatives). The constants below are measured on this machine (docs/scaling.md
says where); the network is the stated model, not a measurement.
"""
import math
import sys

# measured on this machine (make bench: bench_train; the default model, batch 64)
IPS_1 = 307.0           # images/s of one process, 2 threads, quiet machine
FLOP_STEP = 19.03e9     # FLOP of one step (dim_trainer_step_flops)
FLOPS = 91.6e9          # FLOP/s the training step achieves on 2 threads
# the default model's shapes
B0, LC, D = 64, 64, 512             # images per machine, local locations (8x8), MI width
GRAD_BYTES = 5910650 * 4            # main + prior gradient slabs (two allreduces)
CRITIC_1 = 3 * 2 * B0 * B0 * LC * D  # FLOP of the local critic's three products at N = 1
EST_S_PER_SCORE = 8e-9 / 2          # estimator (exp, log1p in double) per score, 2 cores
SMALL_CALLS = 16                    # batch-norm (6 fwd + 6 bwd), 3 loss sums, stop flag
ALPHA = 10e-6                       # seconds per message (TCP on Ethernet; loopback TCP: 4.7 us)
NETS = [("10 Gb/s", 10e9 / 8), ("25 Gb/s", 25e9 / 8), ("100 Gb/s", 100e9 / 8)]
MACHINES = [1, 2, 4, 8, 16, 32, 64]


def ring_allreduce(n_bytes, N, bw):
    return 0.0 if N == 1 else 2 * (N - 1) * ALPHA + 2 * (N - 1) / N * n_bytes / bw


def ring_allgather(bytes_per_rank, N, bw):
    return 0.0 if N == 1 else (N - 1) * ALPHA + (N - 1) * bytes_per_rank / bw


def small_allreduce(N):
    return 0.0 if N == 1 else 2 * math.ceil(math.log2(N)) * ALPHA


def step(N, bw, design, overlap, b=B0):
    """Seconds per step on each machine with b images each; returns (total, compute, comm)."""
    B = b * N
    per_image = (64.0 / IPS_1 - CRITIC_1 / FLOPS - B0 * B0 * LC * EST_S_PER_SCORE) / B0
    if design == "gather-l":  # dimd's first version: gather l and g, every rank scores B x B
        crit = (2 * B * B * LC * D + 4 * b * B * LC * D) / FLOPS + B * B * LC * EST_S_PER_SCORE
        gathers = ring_allgather(b * LC * D * 4, N, bw) + ring_allgather(b * D * 4, N, bw)
        extra = 0.0
    else:  # dimd: gather g only, each rank scores all B anchors against its b*Lc columns
        crit = 6 * b * B * LC * D / FLOPS + B * b * LC * EST_S_PER_SCORE
        gathers = ring_allgather(b * D * 4, N, bw)
        extra = ring_allreduce(B * D * 4, N, bw) + small_allreduce(N)  # dG, row statistics
    compute = per_image * b + crit
    grad = ring_allreduce(GRAD_BYTES, N, bw)
    small = SMALL_CALLS * small_allreduce(N)
    if overlap:  # the gradient allreduce hides behind the backward pass (2/3 of compute)
        grad = max(0.0, grad - 2.0 / 3.0 * compute)
    comm = grad + gathers + extra + small
    return compute + comm, compute, comm


def efficiency(N, bw, design, overlap, b=B0):
    """img/s on N machines, and that over N times one machine's img/s on the same global
    batch (the same job on one machine: the all-pairs critic grows with the batch)."""
    ips = b * N / step(N, bw, design, overlap, b)[0]
    one = b * N / step(1, bw, design, overlap, b * N)[0]
    return ips, ips / (N * one)


def table(design, overlap, global_batch=None):
    """Weak scaling (64 images per machine), or a fixed global batch split over N."""
    rows = ["| machines | " + " | ".join("%s img/s (eff.)" % n for n, _ in NETS) + " |",
            "|---|" + "---|" * len(NETS)]
    for N in MACHINES:
        cells = []
        b = global_batch / N if global_batch else B0
        for _, bw in NETS:
            ips, eff = efficiency(N, bw, design, overlap, b)
            cells.append("%.0f (%.0f %%)" % (ips, 100 * eff))
        rows.append("| %d | %s |" % (N, " | ".join(cells)))
    return "\n".join(rows)


def svg(path):
    W, H, L, R, T, Bm = 800, 420, 60, 280, 20, 50
    series = []
    colours = {"10 Gb/s": "#d62728", "25 Gb/s": "#ff7f0e", "100 Gb/s": "#2ca02c"}
    for design, overlap, dash, what in (("column", False, "", "dimd"),
                                        ("column", True, "6,4", "dimd, overlap"),
                                        ("gather-l", False, "2,3", "gather l (first version)")):
        for name, bw in NETS:
            pts = [(N, efficiency(N, bw, design, overlap)[1]) for N in MACHINES]
            series.append(("%s, %s" % (name, what), colours[name], dash, pts))

    def x(N):
        return L + (W - L - R) * math.log2(N) / math.log2(MACHINES[-1])

    def y(e):
        return T + (H - T - Bm) * (1 - e)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>']
    for e in (0, 0.25, 0.5, 0.75, 1.0):
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, y(e), W - R, y(e)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%d %%</text>' % (L - 4, y(e) + 4, 100 * e))
    for N in MACHINES:
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(N), H - Bm + 16, N))
    out.append('<text x="%d" y="%d" text-anchor="middle">machines (2 cores each, 64 images '
               'per machine per step)</text>' % ((L + W - R) // 2, H - 10))
    out.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">scaling '
               'efficiency</text>' % (H // 2, H // 2))
    for i, (label, colour, dash, pts) in enumerate(series):
        d = " ".join("%s%.1f,%.1f" % ("M" if j == 0 else "L", x(N), y(min(e, 1.0)))
                     for j, (N, e) in enumerate(pts))
        out.append('<path d="%s" fill="none" stroke="%s" stroke-width="1.6"%s/>' % (
            d, colour, ' stroke-dasharray="%s"' % dash if dash else ""))
        ly = T + 12 + 16 * i
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.6"%s/>' % (
            W - R + 8, ly, W - R + 30, ly, colour, ' stroke-dasharray="%s"' % dash if dash else ""))
        out.append('<text x="%d" y="%d">%s</text>' % (W - R + 34, ly + 4, label))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    if "--svg" in sys.argv:
        svg(sys.argv[sys.argv.index("--svg") + 1])
    for design, overlap, title in (
            ("column", False, "dimd (gather g, column blocks), 64 images per machine"),
            ("column", True, "dimd, gradient allreduce overlapped with the backward pass"),
            ("gather-l", False, "the first version (gather l and g, every rank scores B x B)")):
        print("### %s\n\n%s\n" % (title, table(design, overlap)))
    for gb in (64, 512):
        print("### dimd, fixed global batch %d (%d / N images per machine), no overlap\n\n%s\n"
              % (gb, gb, table("column", False, gb)))
    print("step time at 25 Gb/s, dimd, 64 images per machine (compute / communication, ms):")
    for N in MACHINES:
        t, c, m = step(N, 25e9 / 8, "column", False)
        print("  N=%d: %.0f / %.1f" % (N, 1e3 * c, 1e3 * m))


if __name__ == "__main__":
    main()
