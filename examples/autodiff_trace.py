"""The lecture's evaluation-trace example: f(w1, w2) with every intermediate named.

Run it directly, or through the command line:

    python examples/autodiff_trace.py
    graphc trace  examples/autodiff_trace.py:f
    graphc source examples/autodiff_trace.py:f --grad
"""
import numpy as np

import graphc


@graphc.example(1.5, 0.5)
def f(w1, w2):
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    z6 = z4 * z5
    return z6


def main():
    print("Evaluation trace:")
    print(graphc.trace(f, 1.5, 0.5))
    df = graphc.grad(f, argnums=(0, 1))
    d_w1, d_w2 = df(1.5, 0.5)
    print(f"\nGradient at (1.5, 0.5): df/dw1 = {d_w1:.6f}, df/dw2 = {d_w2:.6f}\n")
    print("Generated code:")
    print(df.source(1.5, 0.5))
    # Forward mode: the tangents flow with the trace (dot_z1 = dz1/dw1 ...).
    out, dot = graphc.jvp(f, (1.5, 0.5), (1.0, 0.0))
    print(f"Forward mode along w1: f = {out:.6f}, df/dw1 = {dot:.6f}\n")
    source = graphc.jvp(f).source((1.5, 0.5), (1.0, 0.0))
    print(source[:source.index("\n\n# The arguments")])


if __name__ == "__main__":
    main()
