"""atcp's benchmark suite: peers side by side, through one seeded impairment proxy.

Run it with ``python -m benchmarks [--quick]``; see benchmarks/README.md.
"""
