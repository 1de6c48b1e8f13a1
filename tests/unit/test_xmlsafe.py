import io

import pytest

from brygga import xmlsafe

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<lolz>&lol2;</lolz>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_fromstring_refuses_doctype(payload):
    with pytest.raises(xmlsafe.UnsafeXML):
        xmlsafe.fromstring(payload)


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_iterparse_refuses_doctype_from_bytes_and_streams(payload):
    with pytest.raises(xmlsafe.UnsafeXML):
        list(xmlsafe.iterparse(payload))
    with pytest.raises(xmlsafe.UnsafeXML):
        list(xmlsafe.iterparse(io.BytesIO(payload)))


def test_malformed_is_a_clear_error():
    with pytest.raises(xmlsafe.MalformedXML, match="not well-formed"):
        xmlsafe.fromstring(b"<a><b></a>")
    with pytest.raises(xmlsafe.MalformedXML):
        list(xmlsafe.iterparse(b"<a><b></a>"))


def test_iterparse_streams_large_input_in_small_reads():
    body = b"<r>" + b"".join(b"<i n='%d'/>" % i for i in range(50_000)) + b"</r>"
    count = 0
    for _, el in xmlsafe.iterparse(io.BytesIO(body), tag="i"):
        count += 1
        el.clear()
    assert count == 50_000


def test_doctype_word_inside_content_is_fine():
    root = xmlsafe.fromstring(b"<r>text mentioning &lt;!DOCTYPE&gt; is data</r>")
    assert "DOCTYPE" in root.text
