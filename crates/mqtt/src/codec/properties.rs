//! MQTT 5.0 properties (§2.2.2): decoded into the fields this server uses, every identifier
//! checked against its data type; an unknown identifier or a repeated single-valued one makes
//! the packet malformed or a protocol error, as the spec says.

use super::{put_binary, put_var_int, DecodeError, DecodeResult, Reader};

/// User properties one packet may carry: bounds the memory a packet of many tiny pairs takes.
pub const USER_PROPERTIES_MAX: usize = 1024;

/// Property identifiers (§2.2.2.2).
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The properties of one packet. Fields the server does not act on are checked and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub session_expiry_interval: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub topic_alias: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub message_expiry_interval: Option<u32>,
    pub subscription_identifier: Option<usize>,
    pub authentication_method: Option<String>,
    pub reason_string: Option<String>,
    pub user: Vec<(String, String)>,
}

/// The data type of each identifier.
enum Kind {
    Byte,
    U16,
    U32,
    VarInt,
    Text,
    Binary,
    Pair,
}

fn kind_of(property: u8) -> Option<Kind> {
    use id::*;
    Some(match property {
        PAYLOAD_FORMAT_INDICATOR
        | REQUEST_PROBLEM_INFORMATION
        | REQUEST_RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => Kind::Byte,
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => Kind::U16,
        MESSAGE_EXPIRY_INTERVAL | SESSION_EXPIRY_INTERVAL | WILL_DELAY_INTERVAL | MAXIMUM_PACKET_SIZE => Kind::U32,
        SUBSCRIPTION_IDENTIFIER => Kind::VarInt,
        CONTENT_TYPE
        | RESPONSE_TOPIC
        | ASSIGNED_CLIENT_IDENTIFIER
        | AUTHENTICATION_METHOD
        | RESPONSE_INFORMATION
        | SERVER_REFERENCE
        | REASON_STRING => Kind::Text,
        CORRELATION_DATA | AUTHENTICATION_DATA => Kind::Binary,
        USER_PROPERTY => Kind::Pair,
        _ => return None,
    })
}

/// A decoded value, before it is stored in its field.
enum Value {
    Int(u64),
    Text(String),
    Pair(String, String),
    Binary,
}

impl Properties {
    /// Reads the property length and the properties it covers.
    pub(crate) fn read(reader: &mut Reader) -> DecodeResult<Properties> {
        let len = reader.var_int()?;
        let mut inner = Reader::new(reader.take(len)?);
        let mut properties = Properties::default();
        let mut seen = [false; 0x2B];
        while inner.remaining() > 0 {
            // Identifiers are variable byte integers, but every defined one fits in one byte.
            let property = inner.var_int()?;
            let property =
                u8::try_from(property).map_err(|_| DecodeError::malformed(format!("unknown property {property}")))?;
            let kind =
                kind_of(property).ok_or_else(|| DecodeError::malformed(format!("unknown property {property}")))?;
            if property != id::USER_PROPERTY {
                let slot = &mut seen[usize::from(property)];
                if *slot {
                    return Err(DecodeError::protocol(format!("property 0x{property:02X} given twice")));
                }
                *slot = true;
            }
            let value = match kind {
                Kind::Byte => Value::Int(inner.u8()?.into()),
                Kind::U16 => Value::Int(inner.u16()?.into()),
                Kind::U32 => Value::Int(inner.u32()?.into()),
                Kind::VarInt => Value::Int(inner.var_int()? as u64),
                Kind::Text => Value::Text(inner.string()?),
                Kind::Binary => {
                    inner.binary()?;
                    Value::Binary
                }
                Kind::Pair => Value::Pair(inner.string()?, inner.string()?),
            };
            properties.store(property, value)?;
        }
        Ok(properties)
    }

    fn store(&mut self, property: u8, value: Value) -> DecodeResult<()> {
        let int = |value: &Value| match value {
            Value::Int(n) => *n,
            _ => 0,
        };
        match property {
            id::SESSION_EXPIRY_INTERVAL => self.session_expiry_interval = Some(int(&value) as u32),
            id::RECEIVE_MAXIMUM => {
                let n = int(&value) as u16;
                if n == 0 {
                    return Err(DecodeError::protocol("receive maximum of 0"));
                }
                self.receive_maximum = Some(n);
            }
            id::MAXIMUM_PACKET_SIZE => {
                let n = int(&value) as u32;
                if n == 0 {
                    return Err(DecodeError::protocol("maximum packet size of 0"));
                }
                self.maximum_packet_size = Some(n);
            }
            id::TOPIC_ALIAS => self.topic_alias = Some(int(&value) as u16),
            id::TOPIC_ALIAS_MAXIMUM => self.topic_alias_maximum = Some(int(&value) as u16),
            id::MESSAGE_EXPIRY_INTERVAL => self.message_expiry_interval = Some(int(&value) as u32),
            id::SUBSCRIPTION_IDENTIFIER => {
                // §3.8.2.1.2: 1 to 268,435,455 (a variable byte integer's range); 0 is an error.
                let n = int(&value) as usize;
                if n == 0 {
                    return Err(DecodeError::protocol("subscription identifier of 0"));
                }
                self.subscription_identifier = Some(n);
            }
            id::PAYLOAD_FORMAT_INDICATOR | id::REQUEST_PROBLEM_INFORMATION | id::REQUEST_RESPONSE_INFORMATION
                if int(&value) > 1 =>
            {
                return Err(DecodeError::protocol(format!("property 0x{property:02X} must be 0 or 1")));
            }
            id::USER_PROPERTY => {
                if self.user.len() >= USER_PROPERTIES_MAX {
                    return Err(DecodeError::with(
                        super::Reason::ImplementationSpecificError,
                        format!("more than {USER_PROPERTIES_MAX} user properties"),
                    ));
                }
                if let Value::Pair(k, v) = value {
                    self.user.push((k, v));
                }
            }
            id::AUTHENTICATION_METHOD => {
                if let Value::Text(t) = value {
                    self.authentication_method = Some(t);
                }
            }
            id::REASON_STRING => {
                if let Value::Text(t) = value {
                    self.reason_string = Some(t);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Properties of an outgoing packet, written in the order added.
#[derive(Default)]
pub(crate) struct PropertyWriter {
    bytes: Vec<u8>,
}

impl PropertyWriter {
    pub fn byte(&mut self, property: u8, value: u8) -> &mut Self {
        self.bytes.extend_from_slice(&[property, value]);
        self
    }

    pub fn u16(&mut self, property: u8, value: u16) -> &mut Self {
        self.bytes.push(property);
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn u32(&mut self, property: u8, value: u32) -> &mut Self {
        self.bytes.push(property);
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn var_int(&mut self, property: u8, value: usize) -> &mut Self {
        self.bytes.push(property);
        put_var_int(&mut self.bytes, value);
        self
    }

    pub fn text(&mut self, property: u8, value: &str) -> &mut Self {
        self.bytes.push(property);
        put_binary(&mut self.bytes, value.as_bytes());
        self
    }

    pub fn pair(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.bytes.push(id::USER_PROPERTY);
        put_binary(&mut self.bytes, key.as_bytes());
        put_binary(&mut self.bytes, value);
        self
    }

    /// The property length and the properties.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 4);
        put_var_int(&mut out, self.bytes.len());
        out.extend_from_slice(&self.bytes);
        out
    }
}
