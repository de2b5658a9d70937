//! The local stack: moto (the local AWS), resources provisioned from the SAM template, and one
//! API Gateway-like front door serving every HTTP function on 127.0.0.1:3000.

pub mod aws_counter;
pub mod gateway;
pub mod jwt;
pub mod lambda;
pub mod moto;
pub mod oauth_server;
pub mod provider_shapes;
pub mod provision;
pub mod stack;
pub mod template;
pub mod workers;
