"""Print this process's resource limits (soft, hard) as JSON."""
import json
import resource

names = {"cpu": resource.RLIMIT_CPU, "data": resource.RLIMIT_DATA,
         "nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC}
print(json.dumps({k: resource.getrlimit(v) for k, v in names.items()}))
