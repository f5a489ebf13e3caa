"""The pure core: twin state, clinical scores, baselines, models and alert rules.

No I/O: imports schemas and river, never faust, aiokafka, redis or asyncio.
"""
