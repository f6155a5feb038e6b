"""``python -m fastbp``: the command line, :func:`fastbp.cli.console` (with no
arguments, the main job: :mod:`fastbp.cli.main_job`)."""

if __name__ == "__main__":
    from fastbp.cli import console
    console()
