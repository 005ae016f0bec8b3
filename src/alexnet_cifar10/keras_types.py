"""Keras types for annotations, without importing the deep-learning backend.

Kedro evaluates the annotations of every node function (``typing.get_type_hints``)
whenever it builds a catalog, for ``kedro viz`` and ``kedro catalog`` too; naming
``keras.Model`` there would start TensorFlow. Type checkers see the real class.
"""

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from keras import Model as KerasModel
    from keras.callbacks import Callback as KerasCallback
else:
    KerasModel: TypeAlias = Any
    KerasCallback: TypeAlias = Any

__all__ = ["KerasCallback", "KerasModel"]
