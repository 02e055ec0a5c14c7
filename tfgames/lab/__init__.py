"""tfgames.lab: the research tooling beside the library.

``import tfgames`` gives what trains a game (TensorFlow, Keras and NumPy only). The lab holds
what runs and scores experiments: the SGA notebook's experiments and their command line
(:mod:`tfgames.lab.experiments`, :mod:`tfgames.lab.cli`), samplers
(:mod:`tfgames.lab.samplers`), mode and spectrum metrics (:mod:`tfgames.lab.metrics`), plots
(:mod:`tfgames.lab.plotting`), offline MNIST and its classifier (:mod:`tfgames.lab.mnist`) and
the seeds' TF1 code as an executable reference (:mod:`tfgames.lab.tf1_seed`). It needs the
``lab`` extra (``pip install "tfgames[lab]"``: matplotlib, SciPy, mlxtend). Its modules are
imported on demand: ``import tfgames.lab`` itself loads nothing heavy.
"""
