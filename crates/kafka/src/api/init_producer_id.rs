//! InitProducerId: a fresh producer id for an idempotent producer, or the same id with
//! a bumped epoch when the producer asks to recover (KIP-360). Transactions are not
//! supported: a transactional id is refused.

use crate::error_codes::{code_of, NONE, TRANSACTIONAL_ID_AUTHORIZATION_FAILED};
use crate::server::Context;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

pub async fn handle(ctx: &Context, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        response.error_code = TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        return response;
    }
    if request.producer_id.0 >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
        response.error_code = NONE;
        response.producer_id = request.producer_id;
        response.producer_epoch = request.producer_epoch + 1;
        return response;
    }
    match ctx.broker.allocate_producer_id_anywhere().await {
        Ok(id) => {
            response.error_code = NONE;
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            response.error_code = code_of(&e);
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    response
}
