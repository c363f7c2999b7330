"""Write the fuzzer's seed corpus: valid parameter files of every kind cgdn writes.

    python fuzz/make_corpus.py [folder]         # default: fuzz/corpus
"""
import os
import sys

import numpy as np

import cgdn
from cgdn import params


def main(folder):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)

    store = cgdn.ParameterStore()                 # the TF-style layer's variables
    cgdn.gdn(x, store=store, name="gdn")
    cgdn.gdn(x.astype(np.float64), store=store, name="enc/gdn_1", inverse=True)
    store.save(os.path.join(folder, "store.npz"))

    cgdn.save_layers(os.path.join(folder, "layers.npz"),   # layers with settings
                     [cgdn.GDN(3, inverse=True), cgdn.GDN(2, alpha=1.0, epsilon=1.0),
                      cgdn.GDN(4, rectify=True, data_format="channels_first")])

    offset = 2.0**-18                              # a CompressAI state dict, imported
    state = {"g_a.1.beta": params.reparam_init(np.full(3, 1.2), offset, np.float32),
             "g_a.1.gamma": params.reparam_init(rng.uniform(0, 0.2, (3, 3)), offset,
                                                np.float32),
             "g_a.1.beta_reparam.pedestal": np.array([offset**2], np.float32),
             "g_a.1.beta_reparam.lower_bound.bound": np.array([(1e-2 + offset**2) ** 0.5],
                                                              np.float32)}
    imported = cgdn.ParameterStore()
    cgdn.import_compressai(state, imported)
    imported.save(os.path.join(folder, "compressai.npz"))

    tf_vars = {"analysis/gdn_0/reparam_beta:0": np.sqrt(np.ones(2) + offset**2),   # TF1 names
               "analysis/gdn_0/reparam_gamma:0": np.sqrt(0.1 * np.eye(2) + offset**2),
               "analysis/gdn_0/reparam_alpha:0": np.array(2.0)}
    tf_store = cgdn.ParameterStore()
    cgdn.import_tf_variables(tf_vars, tf_store)
    tf_store.save(os.path.join(folder, "tf.npz"))
    layers = cgdn.from_compressai(_Model(state, offset))
    cgdn.save_layers(os.path.join(folder, "from_compressai.npz"), layers)
    print(f"wrote {len(os.listdir(folder))} files to {folder}")


class _Model:
    """The attributes of a CompressAI model with one IGDN module."""

    def __init__(self, state, offset):
        from types import SimpleNamespace as NS
        bound = state["g_a.1.beta_reparam.lower_bound.bound"]
        module = NS(inverse=True, beta=state["g_a.1.beta"], gamma=state["g_a.1.gamma"],
                    beta_reparam=NS(pedestal=np.array([offset**2], np.float32),
                                    lower_bound=NS(bound=bound)),
                    gamma_reparam=NS(pedestal=np.array([offset**2], np.float32),
                                     lower_bound=NS(bound=np.array([offset], np.float32))))
        self._modules = [("g_s.1", module)]

    def named_modules(self):
        return list(self._modules)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus"))
