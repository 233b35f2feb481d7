"""The DVC pipeline of dvc.yaml as a Kubeflow pipeline (KFP v2), and its Katib Experiment (docs/kubeflow.md).

- :mod:`lifecycle.kfp.spec`: dvc.yaml + params.yaml -> stages, artifacts, edges (pure; no kfp import);
- :mod:`lifecycle.kfp.pipeline` / :mod:`lifecycle.kfp.components`: the pipeline and its compilation (kfp SDK);
- :mod:`lifecycle.kfp.runtime`: what the components run in their container (no kfp import);
- :mod:`lifecycle.kfp.katib`: the Katib Experiment of ``train.search_space`` and its trial;
- ``python -m lifecycle.kfp compile|katib|trial``: the command line (`make kfp`).
"""
