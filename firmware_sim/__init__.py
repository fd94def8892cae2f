"""Simulated outside world for demos and tests: device firmware and the reference shop.

The reference shop (:mod:`firmware_sim.shop.server`) is a real HTTP server that speaks
the Reorder API described in ``docs/commerce-api.md``.
"""
