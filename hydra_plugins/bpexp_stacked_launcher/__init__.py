"""``hydra/launcher=stacked``: bpexp's launcher that trains a sweep's jobs together
(see :mod:`bpexp.launcher`).  Hydra finds it by scanning the ``hydra_plugins``
namespace package, as it finds the joblib and submitit launchers."""
