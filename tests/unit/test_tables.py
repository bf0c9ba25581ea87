import gzip
import io

import pandas as pd
import pytest

from churn.errors import DataError
from churn.io.tables import TableWriter, iter_table, read_table, table_columns, write_table


def write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_table_reads_every_csv_column_as_text(tmp_path):
    frame = read_table(write(tmp_path, "id,n,c\n1,2.5,a\n"))
    assert list(frame.columns) == ["id", "n", "c"]
    assert frame["n"].iloc[0] == "2.5"


def test_read_table_reads_only_the_columns_asked_for(tmp_path):
    assert list(read_table(write(tmp_path, "a,b,c\n1,2,3\n"), ["c", "a"]).columns) == ["c", "a"]


def test_read_table_keeps_category_values_that_look_like_na_words(tmp_path):
    frame = read_table(write(tmp_path, "c\nNone\nNo\nNA\n"))
    assert frame["c"].tolist()[:2] == ["None", "No"] and pd.isna(frame["c"].iloc[2])


def test_read_table_strips_a_utf8_byte_order_mark_and_reads_crlf(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,n\r\n1,2\r\n".encode())
    frame = read_table(path)
    assert list(frame.columns) == ["id", "n"] and frame["n"].tolist() == ["2"]


def test_read_table_reads_quoted_fields_with_commas_and_newlines(tmp_path):
    frame = read_table(write(tmp_path, 'id,note\n1,"a, b\nc"\n2,x\n'))
    assert frame["note"].tolist() == ["a, b\nc", "x"]


def test_read_table_reads_gzip_and_parquet(tmp_path):
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(b"id,n\n1,2\n"))
    assert read_table(gz)["n"].tolist() == ["2"]
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1"], "n": [2.0]}).to_parquet(parquet)
    assert read_table(parquet)["n"].tolist() == [2.0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"id,n,c\n", "has a header row but no data rows"),
        (b"id,n\n\xff\xfe,x\n", "is not UTF-8"),
        (b"id,n\n1,2\n3,4,5,6\n", r"is not a valid CSV \(.*Expected 2 columns, got 4"),
        (b"a,a\n1,2\n", "column name\\(s\\) 'a' appear more than once"),
    ],
)
def test_unreadable_files_are_data_errors_naming_them(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"bad\.csv: {message}"):
        read_table(path)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(write(tmp_path, "a\n1\n", name="t.xlsx"))


def test_corrupt_parquet_is_a_data_error(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="is not a readable Parquet file"):
        read_table(path)


def test_table_columns_reads_only_the_header(tmp_path):
    assert table_columns(write(tmp_path, "x,y\n1,2\n")) == ["x", "y"]


# chunks


def numbered(tmp_path, rows, name="n.csv"):
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(rows)], "v": [str(i) for i in range(rows)]})
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name, frame


@pytest.mark.parametrize(("rows", "chunk_rows"), [(1, 1), (10, 1), (10, 10), (11, 10), (10, 3), (5, 100)])
def test_iter_table_yields_exact_chunks_in_order(tmp_path, rows, chunk_rows):
    path, frame = numbered(tmp_path, rows)
    chunks = list(iter_table(path, None, chunk_rows))
    expected = [chunk_rows] * (rows // chunk_rows) + ([rows % chunk_rows] if rows % chunk_rows else [])
    assert [c.num_rows for c in chunks] == expected
    joined = pd.concat([c.to_pandas() for c in chunks])
    assert joined["id"].tolist() == frame["id"].tolist()


def test_iter_table_chunks_parquet_too(tmp_path):
    _, frame = numbered(tmp_path, 25)
    frame.to_parquet(tmp_path / "n.parquet")
    assert [c.num_rows for c in iter_table(tmp_path / "n.parquet", ["v"], 10)] == [10, 10, 5]


def test_categorical_columns_are_read_as_categoricals_with_nulls(tmp_path):
    frame = read_table(write(tmp_path, "c,d\na,x\n,y\nb,NA\n"), categorical=["c", "d"])
    assert isinstance(frame["c"].dtype, pd.CategoricalDtype)
    assert frame["c"].isna().tolist() == [False, True, False] and frame["d"].isna().tolist() == [False, False, True]


def test_a_bad_row_deep_in_a_file_names_the_rows_read_before_it(tmp_path, monkeypatch):
    monkeypatch.setattr("churn.io.tables.READ_BLOCK_BYTES", 1 << 10)  # many small blocks
    lines = ["id,v"] + [f"r{i},{i}" for i in range(2000)] + ["oops,1,2"] + [f"s{i},{i}" for i in range(100)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    seen = []
    with pytest.raises(DataError, match=r"Row #2002: Expected 2 columns, got 3.*bad row follows data row [\d,]+"):
        for chunk in iter_table(path, None, 100):
            seen.append(chunk.num_rows)
    assert sum(seen) <= 2000


# writing


def test_write_table_writes_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"id": ["a"], "p": [0.25]})
    with pytest.raises(FileNotFoundError):  # a missing folder is never created by a write
        write_table(frame, tmp_path / "out" / "p.csv")
    assert not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()
    write_table(frame, tmp_path / "out" / "p.csv")
    write_table(frame, tmp_path / "p.parquet")
    assert (tmp_path / "out" / "p.csv").read_text() == "id,p\na,0.25\n"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), frame)


def test_csv_output_quotes_only_values_that_need_it(tmp_path):
    frame = pd.DataFrame({"id": ["a", 'b,"c"'], "note, x": ["y\nz", "w"]})
    write_table(frame, tmp_path / "q.csv")
    assert (tmp_path / "q.csv").read_text().startswith('id,"note, x"\n')
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "q.csv", dtype=str), frame, check_dtype=False)


def test_table_writer_round_trips_floats_exactly_and_gzip(tmp_path):
    frame = pd.DataFrame({"p": [0.1 + 0.2, 1 / 3, 2.5e-17, 0.0]})
    with TableWriter(tmp_path / "p.csv.gz") as writer:
        writer.write(frame.iloc[:2])
        writer.write(frame.iloc[2:])
    assert writer.rows == 4
    back = pd.read_csv(io.BytesIO(gzip.decompress((tmp_path / "p.csv.gz").read_bytes())))
    assert back["p"].tolist() == frame["p"].tolist()


def test_table_writer_leaves_no_file_and_keeps_an_old_one_when_a_chunk_fails(tmp_path):
    target = tmp_path / "p.csv"
    with pytest.raises(RuntimeError):
        with TableWriter(target) as writer:
            writer.write(pd.DataFrame({"a": [1]}))
            raise RuntimeError("chunk 2 failed")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with TableWriter(target) as writer:
            writer.write(pd.DataFrame({"a": [1]}))
            raise RuntimeError("chunk 2 failed")
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]


def test_iter_table_names_requested_columns_the_file_lacks(tmp_path):
    with pytest.raises(DataError, match=r"t\.csv: missing required column\(s\) b, c"):
        list(iter_table(write(tmp_path, "a\n1\n"), ["a", "b", "c"], 10))
