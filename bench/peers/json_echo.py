"""The floor for batch mode: read each JSON line from stdin and write it back, nothing else."""

import json
import sys

write = sys.stdout.write
for line in sys.stdin:
    write(json.dumps(json.loads(line)) + "\n")
