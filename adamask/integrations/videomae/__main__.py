"""The VideoMAE launcher's entry point: ``python -m adamask.integrations.videomae --repo PATH [options] --
<their arguments>``."""

from adamask.integrations.videomae import main

main()
