"""Keep torch from binding a live process group into default arguments.

``torch.distributed.nn.functional`` defines its collectives with ``group=group.WORLD`` as a
default argument, evaluated when the module is first imported. torch imports it lazily (through
``torch._dynamo``, which ``DistributedDataParallel``, ``torch.compile`` and the first call of a
custom operator load on first use). If that first import happens after
``torch.distributed.init_process_group``, the default group is captured by those defaults and
outlives ``destroy_process_group()``: on gloo its threads keep running and are torn down with the
interpreter, which now and then aborts a rank that has finished its work ("terminate called
without an active exception", exit code -6).

Importing the module here, when ``import dropkit`` runs (before a process group normally exists),
makes those defaults ``None``. It costs about 3 ms once torch is loaded. When a group already
exists, the import would capture it, so it is left to torch.
"""

import torch

if torch.distributed.is_available() and not torch.distributed.is_initialized():
    import torch.distributed.nn
