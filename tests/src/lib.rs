//! placeholder

pub mod bedrock_mock;
pub mod moto;
