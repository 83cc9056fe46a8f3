"""How a table's rows map onto the file: scalars in the compound table, vectors beside it.

Campaign code builds rows of a *row dtype* that may hold vector fields (a sweep's start and
refined points, one value per replica in a tempering round, a sample's state).  A file of
format 2 keeps only scalar columns in its compound tables, so that
``pandas.DataFrame(f[table][()])`` works and no compound type grows with the ladder (HDF5
limits a datatype to 64 KiB):

* a vector field with *labels* (the sweep's parameter names) becomes one scalar column
  per label, ``<field>_<label>``, at the field's place;
* any other vector field becomes the dataset ``<table>_<field>`` of shape
  (rows, *shape), row i belonging to row i of the table (preallocated, filled and
  extended with it, written by the rank that writes the row).

The table's JSON attribute ``vectors`` records the split, one entry per vector field in
row order: ``{"field", "position", "columns": [...]}`` or ``{"field", "position",
"dataset"}`` (``position``: the field's index in the row dtype).  Readers join the parts
back into rows of the row dtype.  A table without the attribute (format 1, or no vector
field) is its own row dtype: the join is a no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Sequence

import h5py
import numpy as np

#: the table attribute describing the split (see the module docstring)
VECTORS_ATTR = "vectors"
#: rows read or written per slice are bounded by bytes, not only by rows (a round of a
#: 100,000-replica ladder is megabytes)
SLICE_BYTES = 64 << 20
MAX_SLICE_ROWS = 65536


def labeled_column(field: str, label: str) -> str:
    """The scalar column holding `field[label]` (e.g. ``x0_D0``)."""
    return f"{field}_{label}"


def side_dataset(table: str, field: str) -> str:
    """The dataset holding the vector `field` of `table` (e.g. ``rounds_energy``)."""
    return f"{table}_{field}"


def slice_rows(dtype: np.dtype) -> int:
    """Rows per slice for rows of `dtype`: at most MAX_SLICE_ROWS and about SLICE_BYTES."""
    return max(1, min(MAX_SLICE_ROWS, SLICE_BYTES // max(dtype.itemsize, 1)))


@dataclass(frozen=True)
class Vector:
    """A vector field of the row dtype and where the file keeps it."""

    field: str
    position: int
    base: np.dtype                       # element dtype
    shape: tuple[int, ...]
    columns: tuple[str, ...] | None = None   # stored as these scalar columns
    dataset: str | None = None               # or as this dataset

    def entry(self) -> dict:
        where = {"columns": list(self.columns)} if self.columns is not None else \
            {"dataset": self.dataset}
        return {"field": self.field, "position": self.position, **where}


class LayoutError(ValueError):
    """A table's ``vectors`` attribute does not match the file (damaged or crafted)."""


class TableLayout:
    """The row dtype of a table, its stored compound dtype and its vectors."""

    def __init__(self, name: str, row_dtype: np.dtype, stored_dtype: np.dtype,
                 vectors: Sequence[Vector]):
        self.name, self.row_dtype, self.stored_dtype = name, row_dtype, stored_dtype
        self.vectors = tuple(vectors)
        self._by_field = {v.field: v for v in self.vectors}

    # -- building ----------------------------------------------------------------------
    @classmethod
    def plan(cls, name: str, row_dtype: np.dtype,
             labels: Mapping[str, Sequence[str]] | None = None) -> "TableLayout":
        """The format-2 layout of a new table of `row_dtype`: labelled vectors as named
        columns, other vectors as side datasets (ValueError if two stored names clash)."""
        labels = dict(labels or {})
        stored: list[tuple] = []
        vectors: list[Vector] = []
        for position, field in enumerate(row_dtype.names):
            dt = row_dtype[field]
            if dt.subdtype is None:
                if field in labels:
                    raise ValueError(f"table {name!r}: labels given for the scalar {field!r}")
                stored.append((field, dt))
                continue
            base, shape = dt.subdtype
            if field in labels:
                names = tuple(labels.pop(field))
                if len(shape) != 1 or len(names) != shape[0]:
                    raise ValueError(f"table {name!r}: {len(names)} labels for {field!r} "
                                     f"of shape {shape}")
                columns = tuple(labeled_column(field, n) for n in names)
                stored += [(c, base) for c in columns]
                vectors.append(Vector(field, position, base, shape, columns=columns))
            else:
                vectors.append(Vector(field, position, base, shape,
                                      dataset=side_dataset(name, field)))
        if labels:
            raise ValueError(f"table {name!r}: labels for unknown fields {sorted(labels)}")
        seen = [n for n, _ in stored]
        clash = sorted({n for n in seen if seen.count(n) > 1})
        if clash:
            raise ValueError(f"table {name!r}: columns {clash} would appear twice")
        return cls(name, row_dtype, np.dtype(stored), vectors)

    @classmethod
    def of(cls, ds: h5py.Dataset) -> "TableLayout":
        """The layout of a table in a file (LayoutError when its ``vectors`` attribute does
        not fit the file)."""
        name = ds.name.lstrip("/")
        stored = ds.dtype
        raw = ds.attrs.get(VECTORS_ATTR)
        if raw is None:
            return cls(name, stored, stored, ())
        entries = _entries(raw, name)
        names = list(stored.names or ())
        taken: set[str] = set()
        vectors: list[Vector] = []
        for e in entries:
            field, position = e["field"], e["position"]
            if "columns" in e:
                columns = tuple(e["columns"])
                missing = [c for c in columns if c not in names]
                if missing or not columns or taken & set(columns) or len(set(columns)) < len(columns):
                    raise LayoutError(f"table '{name}': vector '{field}' names columns the "
                                      "table does not hold (or holds twice)")
                bases = {stored[c] for c in columns}
                if len(bases) != 1 or stored[columns[0]].kind not in "iufb":
                    raise LayoutError(f"table '{name}': the columns of vector '{field}' are "
                                      "not numbers of one type")
                taken |= set(columns)
                vectors.append(Vector(field, position, stored[columns[0]], (len(columns),),
                                      columns=columns))
            else:
                side = ds.file.get(e["dataset"])
                if not isinstance(side, h5py.Dataset) or side.dtype.names is not None \
                        or side.ndim < 2 or side.dtype.kind not in "iufb":
                    raise LayoutError(f"table '{name}': the dataset '{e['dataset']}' of its "
                                      f"vector '{field}' is missing or not a numeric array "
                                      "with a row per table row")
                if side.shape[0] < ds.shape[0]:     # longer: an extension under way
                    raise LayoutError(f"table '{name}': '{e['dataset']}' has {side.shape[0]} "
                                      f"rows, the table {ds.shape[0]}")
                vectors.append(Vector(field, position, side.dtype, tuple(side.shape[1:]),
                                      dataset=e["dataset"]))
        scalars = [n for n in names if n not in taken]
        n_fields = len(scalars) + len(vectors)
        positions = sorted(v.position for v in vectors)
        fields = {v.field for v in vectors}
        if positions != sorted(set(positions)) or (positions and positions[-1] >= n_fields) \
                or len(fields) < len(vectors) or fields & set(scalars):
            raise LayoutError(f"table '{name}': attribute '{VECTORS_ATTR}' does not describe "
                              "its columns (positions or fields repeat or do not fit)")
        at = {v.position: v for v in vectors}
        rest = iter(scalars)
        row: list[tuple] = []
        for position in range(n_fields):
            v = at.get(position)
            if v is None:
                n = next(rest)
                row.append((n, stored[n]))
            else:
                row.append((v.field, v.base, v.shape))
        return cls(name, np.dtype(row), stored, vectors)

    # -- what the file holds -------------------------------------------------------------
    @property
    def split(self) -> bool:
        return bool(self.vectors)

    def attr(self) -> str | None:
        """The ``vectors`` attribute of the table (None: nothing to record)."""
        return json.dumps([v.entry() for v in self.vectors]) if self.vectors else None

    @property
    def side_datasets(self) -> list[Vector]:
        return [v for v in self.vectors if v.dataset is not None]

    def stored_columns(self) -> list[str]:
        """Every column a user sees, in row order: compound columns and side fields."""
        out: list[str] = []
        for field in self.row_dtype.names:
            v = self._by_field.get(field)
            out += [field] if v is None or v.dataset is not None else list(v.columns)
        return out

    # -- rows ------------------------------------------------------------------------------
    def conform(self, rows: np.ndarray) -> np.ndarray:
        """`rows` as rows of the row dtype: as they are, or copied by field name (rows
        built for another layout of the same table, e.g. a format-1 file resumed; fields
        the table lacks are dropped, a field it needs and `rows` lack is an error)."""
        if rows.dtype == self.row_dtype:
            return rows
        missing = [n for n in self.row_dtype.names if n not in (rows.dtype.names or ())]
        if missing:
            raise ValueError(f"rows for table {self.name!r} lack the columns {missing}")
        out = np.empty(len(rows), dtype=self.row_dtype)
        for n in self.row_dtype.names:
            out[n] = rows[n]
        return out

    def to_stored(self, rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Rows of the row dtype -> (compound rows, {side dataset: array})."""
        if not self.vectors:
            return rows, {}
        comp = np.empty(len(rows), dtype=self.stored_dtype)
        sides: dict[str, np.ndarray] = {}
        for field in self.row_dtype.names:
            v = self._by_field.get(field)
            if v is None:
                comp[field] = rows[field]
            elif v.columns is not None:
                values = rows[field]
                for i, c in enumerate(v.columns):
                    comp[c] = values[:, i]
            else:
                sides[v.dataset] = np.ascontiguousarray(rows[field])
        return comp, sides

    def fields_dtype(self, fields: Sequence[str] | None) -> np.dtype:
        """The row dtype restricted to `fields` (in row order); all of it for None."""
        if fields is None:
            return self.row_dtype
        unknown = [n for n in fields if n not in self.row_dtype.names]
        if unknown:
            raise KeyError(f"table '{self.name}' has no column {unknown[0]!r}")
        keep = set(fields)
        return np.dtype([(n, self.row_dtype[n]) for n in self.row_dtype.names if n in keep])

    def read(self, ds: h5py.Dataset, start: int, stop: int,
             fields: Sequence[str] | None = None) -> np.ndarray:
        """Rows start..stop of the table as rows of the row dtype (only `fields`, in row
        order, when given)."""
        start, stop, _ = slice(start, stop).indices(ds.shape[0])
        stop = max(stop, start)
        dtype = self.fields_dtype(fields)
        stored_names = [n for n in self._stored_for(dtype)]
        if not self.vectors:
            if fields is None:
                return ds[start:stop]
            return _as_fields(ds.fields(stored_names)[start:stop], dtype)
        if len(stored_names) == len(self.stored_dtype.names):
            comp = ds[start:stop]
        else:
            comp = ds.fields(stored_names)[start:stop] if stored_names else None
        out = np.empty(stop - start, dtype=dtype)
        for field in dtype.names:
            v = self._by_field.get(field)
            if v is None:
                out[field] = comp[field]
            elif v.columns is not None:
                for i, c in enumerate(v.columns):
                    out[field][:, i] = comp[c]
            else:
                out[field] = ds.file[v.dataset][start:stop]
        return out

    def read_column(self, ds: h5py.Dataset, field: str, start: int = 0,
                    stop: int | None = None) -> np.ndarray:
        """One field of rows start..stop (a 2-D or deeper array for a vector)."""
        return self.read(ds, start, ds.shape[0] if stop is None else stop, [field])[field]

    def _stored_for(self, dtype: np.dtype) -> list[str]:
        out: list[str] = []
        for field in dtype.names:
            v = self._by_field.get(field)
            if v is None:
                out.append(field)
            elif v.columns is not None:
                out += list(v.columns)
        return out


def _as_fields(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if rows.dtype == dtype:
        return rows
    out = np.empty(len(rows), dtype=dtype)
    for n in dtype.names:
        out[n] = rows[n]
    return out


def _entries(raw, name: str) -> list[dict]:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        entries = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        entries = None
    ok = isinstance(entries, list) and all(
        isinstance(e, dict) and isinstance(e.get("field"), str)
        and isinstance(e.get("position"), int) and not isinstance(e.get("position"), bool)
        and e["position"] >= 0
        and (("columns" in e and isinstance(e["columns"], list)
              and all(isinstance(c, str) for c in e["columns"]) and "dataset" not in e)
             or ("dataset" in e and isinstance(e["dataset"], str) and "columns" not in e))
        for e in entries)
    if not ok:
        raise LayoutError(f"table '{name}': attribute '{VECTORS_ATTR}' is not a JSON list of "
                          "{field, position, columns | dataset} entries")
    return entries


def table_layout(f: h5py.File, name: str) -> TableLayout:
    """The layout of table `name` of an open file."""
    return TableLayout.of(f[name])


def read_rows(f: h5py.File, name: str, start: int = 0, stop: int | None = None,
              fields: Sequence[str] | None = None) -> np.ndarray:
    """Rows start..stop of table `name` as the campaign wrote them (row dtype)."""
    ds = f[name]
    return TableLayout.of(ds).read(ds, start, ds.shape[0] if stop is None else stop, fields)
