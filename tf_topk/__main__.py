"""`python -m tf_topk`: the tf-topk command line."""

from tf_topk.cli import main

if __name__ == "__main__":
    main.entrypoint()
