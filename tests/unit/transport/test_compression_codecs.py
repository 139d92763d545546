"""Every compression codec Kafka has can be read: a producer on another client (a Go edge on
franz-go sends snappy by default) must never leave batches the pipeline cannot decompress."""

import pytest
from kafka import codec

PAYLOAD = b"GET /products/42 HTTP/1.1 " * 200


@pytest.mark.parametrize(
    ("available", "encode", "decode"),
    [
        (codec.has_gzip, codec.gzip_encode, codec.gzip_decode),
        (codec.has_snappy, codec.snappy_encode, codec.snappy_decode),
        (codec.has_lz4, codec.lz4_encode, codec.lz4_decode),
        (codec.has_zstd, codec.zstd_encode, codec.zstd_decode),
    ],
    ids=["gzip", "snappy", "lz4", "zstd"],
)
def test_kafka_python_has_the_codec(available, encode, decode):
    assert available(), "its library is missing from requirements.txt"
    compressed = encode(PAYLOAD)
    assert len(compressed) < len(PAYLOAD)
    assert decode(compressed) == PAYLOAD
