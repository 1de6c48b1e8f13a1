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


# A DOCTYPE hidden from a look at the first bytes: the parser's own view is what counts.
_ENTITY_DOC = '<!DOCTYPE r [<!ENTITY x "999999">]><r><NextSequence>&x;</NextSequence><a>1</a></r>'
DISGUISED = {
    "prolog padded past 64 KiB": b'<?xml version="1.0"?><!--' + b"x" * 70_000 + b"-->" + _ENTITY_DOC.encode(),
    "a comment with a tag in it first": b'<?xml version="1.0"?><!-- <x> -->' + _ENTITY_DOC.encode(),
    "UTF-16": ('<?xml version="1.0" encoding="UTF-16"?>' + _ENTITY_DOC).encode("utf-16"),
    "UTF-16 without a declaration": _ENTITY_DOC.encode("utf-16"),
    "UTF-8 with a byte order mark": b"\xef\xbb\xbf" + _ENTITY_DOC.encode(),
}


@pytest.mark.parametrize("payload", DISGUISED.values(), ids=DISGUISED.keys())
def test_a_doctype_is_refused_however_it_is_disguised(payload):
    with pytest.raises(xmlsafe.UnsafeXML):
        xmlsafe.fromstring(payload)
    for tag in (None, "a", "no-such-element"):  # also when nothing the reader asks for is there
        with pytest.raises(xmlsafe.UnsafeXML):
            list(xmlsafe.iterparse(io.BytesIO(payload), tag=tag))


def test_nothing_is_handed_on_before_the_doctype_is_refused():
    seen = []
    with pytest.raises(xmlsafe.UnsafeXML):
        for _, el in xmlsafe.iterparse(DISGUISED["UTF-16"], tag="a"):
            seen.append(el.text)
    assert seen == []


def test_a_document_without_a_doctype_in_utf16_is_read():
    doc = '<?xml version="1.0" encoding="UTF-16"?><r><a>Åsa</a></r>'.encode("utf-16")
    assert [el.text for _, el in xmlsafe.iterparse(doc, tag="a")] == ["Åsa"]
    assert xmlsafe.fromstring(doc).findtext("a") == "Åsa"
