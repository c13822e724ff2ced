"""libnghttp2, the C HTTP/2 library of curl, Apache httpd and Envoy, loaded with cffi.

The HTTP/2 framing, HPACK, flow control and the protocol's checks (RFC 9113 §8.2.1's
field rules, stream states, SETTINGS, the rapid-reset and CONTINUATION flood bounds of
its maintained releases) run in C; edge/h2.py drives one session per connection and is
called back for what pullzone does with requests.

cffi's ABI mode: no compiler and no headers at install time, only the shared library
(`libnghttp2.so.14`, which every distribution ships, as curl needs it). The declarations
below are the subset of `nghttp2/nghttp2.h` used, with the layouts of its structs. Byte
strings are declared `char *` where the header says `uint8_t *` (the same ABI), so cffi
hands them over and back as Python bytes without a copy loop. `nghttp2_frame` is a
union whose every member begins with its frame header; only that header is read here.
"""

from __future__ import annotations

import ctypes.util
import logging
from typing import Any

from cffi import FFI

log = logging.getLogger(__name__)

ffi = FFI()
ffi.cdef(
    """
    typedef struct nghttp2_session nghttp2_session;
    typedef struct nghttp2_session_callbacks nghttp2_session_callbacks;

    typedef struct {
      const char *name;
      const char *value;
      size_t namelen;
      size_t valuelen;
      uint8_t flags;
    } nghttp2_nv;

    typedef struct {
      size_t length;
      int32_t stream_id;
      uint8_t type;
      uint8_t flags;
      uint8_t reserved;
    } nghttp2_frame_hd;

    typedef struct {
      nghttp2_frame_hd hd;
    } nghttp2_frame;

    typedef struct {
      int32_t settings_id;
      uint32_t value;
    } nghttp2_settings_entry;

    typedef union {
      int fd;
      void *ptr;
    } nghttp2_data_source;

    typedef ssize_t (*nghttp2_data_source_read_callback)(
        nghttp2_session *session, int32_t stream_id, char *buf, size_t length,
        uint32_t *data_flags, nghttp2_data_source *source, void *user_data);

    typedef struct {
      nghttp2_data_source source;
      nghttp2_data_source_read_callback read_callback;
    } nghttp2_data_provider;

    typedef int (*nghttp2_on_begin_headers_callback)(
        nghttp2_session *session, const nghttp2_frame *frame, void *user_data);
    typedef int (*nghttp2_on_header_callback)(
        nghttp2_session *session, const nghttp2_frame *frame,
        const char *name, size_t namelen, const char *value, size_t valuelen,
        uint8_t flags, void *user_data);
    typedef int (*nghttp2_on_frame_recv_callback)(
        nghttp2_session *session, const nghttp2_frame *frame, void *user_data);
    typedef int (*nghttp2_on_data_chunk_recv_callback)(
        nghttp2_session *session, uint8_t flags, int32_t stream_id,
        const char *data, size_t len, void *user_data);
    typedef int (*nghttp2_on_stream_close_callback)(
        nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data);

    int nghttp2_session_callbacks_new(nghttp2_session_callbacks **callbacks_ptr);
    void nghttp2_session_callbacks_set_on_begin_headers_callback(
        nghttp2_session_callbacks *cbs, nghttp2_on_begin_headers_callback cb);
    void nghttp2_session_callbacks_set_on_header_callback(
        nghttp2_session_callbacks *cbs, nghttp2_on_header_callback cb);
    void nghttp2_session_callbacks_set_on_frame_recv_callback(
        nghttp2_session_callbacks *cbs, nghttp2_on_frame_recv_callback cb);
    void nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        nghttp2_session_callbacks *cbs, nghttp2_on_data_chunk_recv_callback cb);
    void nghttp2_session_callbacks_set_on_stream_close_callback(
        nghttp2_session_callbacks *cbs, nghttp2_on_stream_close_callback cb);

    int nghttp2_session_server_new(nghttp2_session **session_ptr,
        const nghttp2_session_callbacks *callbacks, void *user_data);
    void nghttp2_session_del(nghttp2_session *session);
    ssize_t nghttp2_session_mem_recv(nghttp2_session *session, const char *in, size_t inlen);
    ssize_t nghttp2_session_mem_send(nghttp2_session *session, const char **data_ptr);
    int nghttp2_session_want_read(nghttp2_session *session);
    int nghttp2_session_want_write(nghttp2_session *session);
    int nghttp2_session_resume_data(nghttp2_session *session, int32_t stream_id);
    int nghttp2_session_terminate_session(nghttp2_session *session, uint32_t error_code);

    int nghttp2_submit_settings(nghttp2_session *session, uint8_t flags,
        const nghttp2_settings_entry *iv, size_t niv);
    int nghttp2_submit_response(nghttp2_session *session, int32_t stream_id,
        const nghttp2_nv *nva, size_t nvlen, const nghttp2_data_provider *data_prd);
    int32_t nghttp2_submit_headers(nghttp2_session *session, uint8_t flags,
        int32_t stream_id, const void *pri_spec, const nghttp2_nv *nva, size_t nvlen,
        void *stream_user_data);
    int nghttp2_submit_rst_stream(nghttp2_session *session, uint8_t flags,
        int32_t stream_id, uint32_t error_code);
    const char *nghttp2_strerror(int lib_error_code);
    """
)

# nghttp2.h's constants used here.
ERR_DEFERRED = -508
ERR_CALLBACK_FAILURE = -902
DATA_FLAG_EOF = 0x01
FLAG_END_STREAM = 0x01
FRAME_DATA = 0x00
FRAME_HEADERS = 0x01
SETTINGS_ENABLE_PUSH = 0x02
SETTINGS_MAX_CONCURRENT_STREAMS = 0x03
SETTINGS_MAX_HEADER_LIST_SIZE = 0x06
NO_ERROR = 0x00
INTERNAL_ERROR = 0x02

SONAME = "libnghttp2.so.14"


def _load() -> Any:
    for name in (SONAME, ctypes.util.find_library("nghttp2")):
        if not name:
            continue
        try:
            return ffi.dlopen(name)
        except OSError:
            continue
    return None


lib: Any = _load()
available = lib is not None
