"""Keras types for annotations, without importing the deep-learning backend.

Kedro evaluates the annotations of every node function (``typing.get_type_hints``, for
its typed parameters) whenever it runs or lists a pipeline, and warns of each it cannot
resolve; naming ``keras.Model`` there would start TensorFlow. The nodes modules annotate
with these names; type checkers see the real classes. (Modules that are not nodes name
``keras.Model`` under ``TYPE_CHECKING``.)
"""

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from keras import Model as KerasModel
    from keras.callbacks import Callback as KerasCallback
else:
    KerasModel: TypeAlias = Any
    KerasCallback: TypeAlias = Any

__all__ = ["KerasCallback", "KerasModel"]
