//! Answers on the wire: the frame codec, sending a message, and errors as
//! replies.

use futures::SinkExt;
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use touchpoint_common::codec::{encode_frame, MAX_FRAME_BYTES};
use touchpoint_common::protocol::{ErrorKind, ErrorReply, Response, ResponseEnvelope};

use crate::store::StoreError;

pub(super) type Conn = Framed<UnixStream, LengthDelimitedCodec>;

/// Length-delimited frames, bounded before a byte of payload is buffered.
pub(super) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// Sends one message; false when the connection is gone.
pub(super) async fn send<T: serde::Serialize>(conn: &mut Conn, msg: &T) -> bool {
    match encode_frame(msg) {
        Ok(bytes) => conn.send(bytes::Bytes::from(bytes)).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a reply");
            false
        }
    }
}

pub(super) fn error_reply(id: u64, kind: ErrorKind, message: String) -> ResponseEnvelope {
    ResponseEnvelope {
        id,
        response: Response::Error(ErrorReply { kind, message }),
    }
}

pub(super) fn err(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply {
        kind,
        message: message.into(),
    })
}

pub(super) fn store_err(e: StoreError) -> Response {
    match e {
        StoreError::UnknownTenant(_) | StoreError::NotFound(_) => {
            err(ErrorKind::NotFound, e.to_string())
        }
        StoreError::Conflict(_) => err(ErrorKind::Invalid, e.to_string()),
        StoreError::Unavailable(_) => err(ErrorKind::Busy, e.to_string()),
        _ => {
            tracing::error!(error = %e, "store error");
            err(ErrorKind::Internal, e.to_string())
        }
    }
}
