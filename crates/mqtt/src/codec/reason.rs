//! MQTT 5.0 reason codes the listener sends, and the 3.1.1 CONNACK return codes they map to.

/// A v5 reason code (MQTT 5.0 §2.4). Only the codes this server sends are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    Success = 0x00,
    NoSubscriptionExisted = 0x11,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierNotFound = 0x92,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    ReceiveMaximumExceeded = 0x93,
    QuotaExceeded = 0x97,
    ServerShuttingDown = 0x8B,
    SharedSubscriptionsNotSupported = 0x9E,
}

impl Reason {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The MQTT 3.1.1 CONNACK return code for a refused CONNECT (§3.2.2.3): 3.1.1 has only
    /// five, so everything but a bad version or client id is "server unavailable".
    pub fn v311_connack_code(self) -> u8 {
        match self {
            Reason::Success => 0,
            Reason::UnsupportedProtocolVersion => 1,
            Reason::ClientIdentifierNotValid => 2,
            Reason::BadAuthenticationMethod => 4,
            _ => 3,
        }
    }
}
