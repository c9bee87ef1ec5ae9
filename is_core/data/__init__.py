"""The inputs: finding, reading and checking the impression logs, and writing outputs atomically.

``stage`` is the load stage (:func:`locate_inputs` → :class:`Inputs`); ``io`` reads the
partitions and files of the input contract; ``contract`` holds the statistics of the validation
checks (schemas, drift bounds, quarantine); ``features`` the stable categorical encodings;
``atomic`` the writers every other part uses. This part imports no other part of ``is_core``.
"""

from is_core.data.atomic import (
    json_safe,
    publish_directory,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from is_core.data.features import FeatureSpec
from is_core.data.io import (
    InputFile,
    day_window,
    fingerprint_files,
    read_input_files,
    resolve_input_files,
)
from is_core.data.stage import (
    ROLES,
    Inputs,
    Role,
    RoleInputs,
    has_role,
    input_files,
    locate_inputs,
    read_role,
    role_columns,
)

__all__ = [
    "FeatureSpec",
    "InputFile",
    "Inputs",
    "ROLES",
    "Role",
    "RoleInputs",
    "day_window",
    "fingerprint_files",
    "has_role",
    "input_files",
    "json_safe",
    "locate_inputs",
    "publish_directory",
    "read_input_files",
    "read_role",
    "resolve_input_files",
    "role_columns",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_parquet_atomic",
    "write_text_atomic",
]
