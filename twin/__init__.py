"""The pure core: twin state, clinical scores, baselines, models and alert rules.

No I/O: imports schemas and river, never faust, aiokafka, redis or asyncio.
"""

from twin import _native

# The compiled core (mypyc), when it is built and matches these sources: twin/_native.py.
__path__ = _native.extend_path(__path__, "twin")
