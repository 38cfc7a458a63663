//! Every error a command can reply, rendered as Redis 7.0 renders it. No
//! error text appears anywhere else.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    UnknownCommand {
        name: Vec<u8>,
        args: Vec<Vec<u8>>,
    },
    UnknownSubcommand {
        sub: Vec<u8>,
        cmd: String,
    },
    /// `ERR unknown subcommand or wrong number of arguments for 'x'. Try CMD HELP.`
    SubcommandSyntax {
        sub: Vec<u8>,
        cmd: String,
    },
    /// `fullname` is `get` or `config|get`.
    WrongArity(String),
    Syntax,
    WrongType,
    NotInteger,
    NotFloat,
    Overflow,
    /// DECRBY by i64::MIN, whose negation overflows.
    DecrementOverflow,
    NanOrInfinity,
    /// LCS on a key that holds another type.
    LcsNotString,
    /// LCS with both IDX and LEN.
    LcsIdxAndLen,
    /// LCS on strings too long to index with 32 bits.
    LcsTooLong,
    /// LCS whose table would exceed proto-max-bulk-len.
    LcsOverLimit,
    /// LCS whose table could not be allocated.
    LcsNoMemory,
    /// A value could not be allocated.
    OutOfMemory,
    NoSuchKey,
    DbIndexOutOfRange,
    InvalidDbIndex,
    SameObject,
    /// `ERR invalid expire time in 'set' command`.
    InvalidExpire(&'static str),
    StringTooLong,
    OffsetOutOfRange,
    InvalidCursor,
    NotPositive(&'static str),
    UnsupportedProtocol,
    NoAuth,
    AuthNotConfigured,
    WrongPass,
    InvalidClientName,
    NoSuchClient,
    InvalidTimeout,
    /// `ERR Unknown option or number of arguments for CONFIG SET - 'x'`.
    UnknownConfig(String),
    /// CONFIG SET of a known parameter with a bad value.
    InvalidConfig {
        name: String,
        why: String,
    },
    DebugUnknown,
    /// DEBUG PROTOCOL with a type it does not know.
    DebugProtocolType,
    /// A reply that only RESP3 can carry, asked for on RESP2.
    Resp2NotSupported,
    ProtocolVersionNotInteger,
    /// `ERR Unsupported option x` (EXPIRE family).
    UnsupportedOption(Vec<u8>),
    ExpireNxConflict,
    ExpireGtLtConflict,
    /// A number that parsed but does not fit in a C int.
    IntRange,
    InvalidFirstDb,
    InvalidSecondDb,
    LfuSelected,
    LfuNotSelected,
    /// CLIENT PAUSE with a mode other than WRITE or ALL.
    PauseMode,
    ClientIdNotPositive,
    NoSuchUser(String),
    UnknownClientType(String),
    /// SLOWLOG GET with a count below -1 or not a number.
    SlowlogCount,
    /// LATENCY GRAPH of an event with no samples.
    LatencyNoSamples(String),
    /// LPOP/RPOP count that is not a non-negative integer.
    MustBePositive,
    /// LSET past either end.
    IndexOutOfRange,
    LposRankZero,
    /// LPOS COUNT or MAXLEN below zero (or not a number).
    LposNegative(&'static str),
    NumkeysNotPositive,
    CountNotPositive,
    TimeoutNotFloat,
    TimeoutNegative,
    /// The reply of a client released by CLIENT UNBLOCK ... ERROR.
    Unblocked,
    /// Blocked clients of a master that becomes a replica.
    UnblockedRoleChange,
    /// MULTI inside MULTI.
    MultiNested,
    WatchInMulti,
    ExecWithoutMulti,
    DiscardWithoutMulti,
    /// A `no_multi` command inside MULTI.
    NotInMulti,
    /// EXEC of a transaction that had errors while queueing.
    ExecAbort,
    /// SETBIT/GETBIT/BITFIELD offset that is not an integer or too large.
    BitOffset,
    /// SETBIT's value that is not 0 or 1.
    BitValue,
    /// BITPOS's bit that is not 0 or 1.
    BitArgument,
    /// A BITFIELD type other than i1..i64 or u1..u63.
    BitfieldType,
    /// BITFIELD OVERFLOW with an unknown behaviour.
    BitfieldOverflow,
    /// BITFIELD_RO with SET or INCRBY.
    BitfieldReadOnly,
    /// BITOP NOT with more than one source.
    BitopNotArity,
    /// ZADD INCR / ZINCRBY whose result is NaN (inf + -inf).
    ScoreNan,
    /// A score range bound that is not a float.
    MinMaxNotFloat,
    /// A lex range bound without `[`, `(`, `-` or `+`.
    LexRangeItem,
    ZaddXxNx,
    ZaddGtLtNx,
    ZaddIncrPair,
    WeightNotFloat,
    /// `ERR at least 1 input key is needed for 'zunion' command`.
    AtLeastOneKey(&'static str),
    LimitNegative,
    /// `ERR value is out of range, must be positive`.
    OutOfRangePositive,
    /// ZRANDMEMBER's count outside -LONG_MAX..LONG_MAX.
    OutOfRangeLong,
    /// ZRANDMEMBER with a negative count and WITHSCORES that overflows.
    OutOfRange,
    ZrangeLimitNeedsBy,
    ZrangeWithscoresBylex,
    /// SORT over a value (or BY weight) that is not a number.
    SortNotDouble,
    /// A command other than (un)subscribe, PING, QUIT, RESET in RESP2
    /// subscribe mode (its full name).
    SubscribeContext(String),
    /// A command that cannot run in a client that must not block (EXEC).
    DenyBlocking(&'static str),
    /// ACL: the command (its full name) is not allowed to the user.
    NoPermCommand(String),
    NoPermKey,
    NoPermChannel,
    /// ACL SETUSER: a rule that cannot be applied, and why.
    AclModifier {
        modifier: String,
        why: &'static str,
    },
    AclUnmatchedParen(String),
    AclNoSuchUser(String),
    AclNoFile,
    /// EXEC itself refused before it ran (ACL, auth): the transaction goes.
    ExecRejected(Box<CmdError>),
    /// `redis.call` of a command the script's user may not run (why).
    ScriptNoPerm(&'static str),
    /// EXEC: a queued command the user's rules no longer allow (why).
    NoPermSinceQueued(&'static str),
    /// SORT's BY or GET pattern for a user who may not read every key.
    SortDenied(&'static str),
    /// A non-loopback client while protected mode is on and the default
    /// user has no password.
    ProtectedMode,
    /// EVAL/FCALL with a negative numkeys.
    NumKeysNegative,
    NumKeysTooMany,
    NoScript,
    /// Another client's script has run past `busy-reply-threshold`.
    BusyScript,
    BusyFunction,
    NotBusy,
    Unkillable,
    ScriptKilled,
    ShebangEngine(String),
    ShebangFlag(String),
    ShebangOption(String),
    ShebangInvalid,
    /// Errors that `redis.call` raises inside a script.
    ScriptNoArgs,
    ScriptArgType,
    ScriptUnknownCommand,
    ScriptWrongArity,
    ScriptNotAllowed,
    ScriptWriteInReadOnly,
    /// A script allowed on a stale replica calls a command that is not.
    ScriptStale,
    /// The thread running a script panicked (a bug): the caller still gets
    /// a reply.
    ScriptAborted,
    /// XREAD/XREADGROUP with BLOCK from a script.
    BlockInScript(&'static str),
    ScriptDebugPipeline,
    /// EVAL_RO/FCALL_RO of a script whose flags allow writes.
    ScriptRoWithWriteFlag,
    ScriptDebugMode,
    /// SCRIPT DEBUG YES|SYNC: there is no Lua debugger.
    ScriptDebugAbsent,
    /// A script error rendered with its source and line (`... script: sha, on @user_script:1.`).
    Script(String),
    /// An argument that is not a stream ID.
    StreamId,
    XaddIdTooSmall,
    XaddIdZero,
    StreamExhausted,
    /// XADD `ms-*` when `ms` has used up its sequence numbers.
    ElementsTooLarge,
    MaxlenNegative,
    StreamLimitNegative,
    MaxlenMinidConflict,
    LimitWithoutTrim,
    XtrimNoStrategy,
    LimitWithoutApprox,
    InvalidStartId,
    InvalidEndId,
    /// XREAD/XREADGROUP with an odd number of arguments after STREAMS.
    StreamsUnbalanced(&'static str, char),
    /// GROUP or NOACK given to XREAD.
    XreadOnlyGroup(&'static str),
    MissingGroup,
    /// `NOGROUP No such key 'k' or consumer group 'g'` with a suffix.
    NoGroup {
        key: Vec<u8>,
        group: Vec<u8>,
        read: bool,
    },
    /// `NOGROUP No such consumer group 'g' for key name 'k'`.
    NoGroupForKey {
        group: Vec<u8>,
        key: Vec<u8>,
    },
    DollarInXreadgroup,
    GtOutsideXreadgroup,
    BusyGroup,
    XgroupNeedsKey,
    EntriesReadInvalid,
    /// `ERR Invalid <what> argument for <cmd>`.
    InvalidArgFor(&'static str, &'static str),
    XclaimOption(Vec<u8>),
    XautoclaimCount,
    EntriesAddedNegative,
    /// XSETID below something: which one.
    XsetidSmaller(&'static str),
    XsetidEntriesAdded,
    /// A blocked XREADGROUP whose key went away or changed type.
    StreamKeyGone,
    /// A blocked XREADGROUP whose group was destroyed.
    BlockedGroupGone,
    /// RESTORE onto an existing key without REPLACE.
    BusyKey,
    /// RESTORE payload with a bad trailer.
    DumpPayload,
    /// RESTORE payload whose object does not parse.
    BadDataFormat,
    /// A command that cannot run while the dataset loads.
    Loading,
    /// A write refused after a failed background save.
    Misconf,
    /// A write refused for lack of min-replicas-to-write good replicas.
    NoReplicas,
    /// A string that is not a HyperLogLog given to a PF command.
    HllNotHll,
    /// A sparse HyperLogLog whose opcodes do not add up.
    HllCorrupt,
    /// PFDEBUG on a missing key.
    PfdebugNoKey,
    PfdebugNotSparse,
    PfdebugUnknown(Vec<u8>),
    /// PFSELFTEST found a fault (what failed).
    HllSelfTest(String),
    /// A position outside longitude ±180 or latitude ±85.05112878 (the
    /// f64 bits, so the enum keeps `Eq`).
    GeoLonLat(u64, u64),
    GeoUnit,
    /// `ERR need numeric radius` (or width, height).
    GeoNotNumeric(&'static str),
    GeoRadiusNegative,
    GeoBoxNegative,
    /// A search centred on a member that is not in the set.
    GeoMemberUnknown,
    GeoCountNotPositive,
    /// STORE with WITHDIST/WITHHASH/WITHCOORD (which command says it).
    GeoStoreWith(&'static str),
    /// GEOSEARCH without FROMMEMBER/FROMLONLAT (the command as typed).
    GeoNeedFrom(String),
    /// GEOSEARCH without BYRADIUS/BYBOX (the command as typed).
    GeoNeedBy(String),
    GeoAnyNeedsCount,
    /// MONITOR inside EXEC or a script.
    MonitorDenyBlocking,
    /// A connection past `maxclients`.
    MaxClients,
    /// A cluster command without cluster mode.
    ClusterDisabled,
    /// A MONITOR connection ran a command that touches keys (Redis treats
    /// monitors as replicas).
    ReplicaKeyspace,
    /// Any other error, text given with its code (`ERR ...`).
    Other(String),
    /// REPLICAOF with a port that is not 0..65535.
    InvalidMasterPort,
    /// A write on a read-only replica.
    ReadOnlyReplica,
    /// A replica whose link is down, with replica-serve-stale-data off.
    MasterDown,
    /// SYNC/PSYNC sent to a replica whose own link is not up.
    NoMasterLink,
}

pub type CmdResult<T = ()> = Result<T, CmdError>;

impl From<damselfly_storage::typed::WrongType> for CmdError {
    fn from(_: damselfly_storage::typed::WrongType) -> CmdError {
        CmdError::WrongType
    }
}

fn quoted(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(max).collect()
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CmdError::*;
        match self {
            UnknownCommand { name, args } => {
                let mut list = String::new();
                for a in args {
                    if list.len() >= 128 {
                        break;
                    }
                    let room = 128 - list.len();
                    list.push('\'');
                    list.push_str(&quoted(a, room));
                    list.push_str("' ");
                }
                write!(f, "ERR unknown command '{}', with args beginning with: {}", quoted(name, 128), list)
            }
            UnknownSubcommand { sub, cmd } => {
                write!(f, "ERR unknown subcommand '{}'. Try {} HELP.", quoted(sub, 128), cmd)
            }
            SubcommandSyntax { sub, cmd } => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
                quoted(sub, 128),
                cmd
            ),
            WrongArity(name) => write!(f, "ERR wrong number of arguments for '{name}' command"),
            Syntax => f.write_str("ERR syntax error"),
            WrongType => f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value"),
            NotInteger => f.write_str("ERR value is not an integer or out of range"),
            NotFloat => f.write_str("ERR value is not a valid float"),
            Overflow => f.write_str("ERR increment or decrement would overflow"),
            DecrementOverflow => f.write_str("ERR decrement would overflow"),
            NanOrInfinity => f.write_str("ERR increment would produce NaN or Infinity"),
            LcsNotString => f.write_str("ERR The specified keys must contain string values"),
            LcsIdxAndLen => f.write_str("ERR If you want both the length and indexes, please just use IDX."),
            LcsTooLong => f.write_str("ERR String too long for LCS"),
            LcsOverLimit => f.write_str(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            ),
            OutOfMemory => f.write_str("OOM command not allowed when used memory > 'maxmemory'."),
            LcsNoMemory => f.write_str("ERR Insufficient memory, failed allocating transient memory for LCS"),
            NoSuchKey => f.write_str("ERR no such key"),
            DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            InvalidDbIndex => f.write_str("ERR invalid DB index"),
            SameObject => f.write_str("ERR source and destination objects are the same"),
            InvalidExpire(cmd) => write!(f, "ERR invalid expire time in '{cmd}' command"),
            StringTooLong => f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            OffsetOutOfRange => f.write_str("ERR offset is out of range"),
            InvalidCursor => f.write_str("ERR invalid cursor"),
            NotPositive(what) => write!(f, "ERR {what} must be positive"),
            UnsupportedProtocol => f.write_str("NOPROTO unsupported protocol version"),
            NoAuth => f.write_str("NOAUTH Authentication required."),
            AuthNotConfigured => f.write_str(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ),
            WrongPass => f.write_str("WRONGPASS invalid username-password pair or user is disabled."),
            InvalidClientName => {
                f.write_str("ERR Client names cannot contain spaces, newlines or special characters.")
            }
            NoSuchClient => f.write_str("ERR No such client"),
            InvalidTimeout => f.write_str("ERR timeout is not an integer or out of range"),
            UnknownConfig(name) => {
                write!(f, "ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
            }
            InvalidConfig { name, why } => {
                write!(f, "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
            }
            DebugUnknown => f.write_str("ERR unknown DEBUG subcommand or wrong number of arguments"),
            DebugProtocolType => f.write_str(
                "ERR Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ),
            Resp2NotSupported => f.write_str("ERR RESP2 is not supported by this command"),
            ProtocolVersionNotInteger => f.write_str("ERR Protocol version is not an integer or out of range"),
            UnsupportedOption(opt) => write!(f, "ERR Unsupported option {}", String::from_utf8_lossy(opt)),
            ExpireNxConflict => f.write_str("ERR NX and XX, GT or LT options at the same time are not compatible"),
            ExpireGtLtConflict => f.write_str("ERR GT and LT options at the same time are not compatible"),
            IntRange => f.write_str("ERR value is out of range, value must between -2147483648 and 2147483647"),
            InvalidFirstDb => f.write_str("ERR invalid first DB index"),
            InvalidSecondDb => f.write_str("ERR invalid second DB index"),
            LfuSelected => f.write_str(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
            LfuNotSelected => f.write_str(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
            MustBePositive => f.write_str("ERR value is out of range, must be positive"),
            PauseMode => f.write_str("ERR CLIENT PAUSE mode must be WRITE or ALL"),
            ClientIdNotPositive => f.write_str("ERR client-id should be greater than 0"),
            NoSuchUser(u) => write!(f, "ERR No such user '{u}'"),
            UnknownClientType(t) => write!(f, "ERR Unknown client type '{t}'"),
            SlowlogCount => f.write_str("ERR count should be greater than or equal to -1"),
            LatencyNoSamples(event) => write!(f, "ERR No samples available for event '{event}'"),
            IndexOutOfRange => f.write_str("ERR index out of range"),
            LposRankZero => f.write_str(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
            ),
            LposNegative(what) => write!(f, "ERR {what} can't be negative"),
            NumkeysNotPositive => f.write_str("ERR numkeys should be greater than 0"),
            CountNotPositive => f.write_str("ERR count should be greater than 0"),
            TimeoutNotFloat => f.write_str("ERR timeout is not a float or out of range"),
            TimeoutNegative => f.write_str("ERR timeout is negative"),
            Unblocked => f.write_str("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            UnblockedRoleChange => f.write_str(
                "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
            ),
            BitOffset => f.write_str("ERR bit offset is not an integer or out of range"),
            BitValue => f.write_str("ERR bit is not an integer or out of range"),
            BitArgument => f.write_str("ERR The bit argument must be 1 or 0."),
            BitfieldType => f.write_str(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            ),
            BitfieldOverflow => f.write_str("ERR Invalid OVERFLOW type specified"),
            BitfieldReadOnly => f.write_str("ERR BITFIELD_RO only supports the GET subcommand"),
            BitopNotArity => f.write_str("ERR BITOP NOT must be called with a single source key."),
            ScoreNan => f.write_str("ERR resulting score is not a number (NaN)"),
            MinMaxNotFloat => f.write_str("ERR min or max is not a float"),
            LexRangeItem => f.write_str("ERR min or max not valid string range item"),
            ZaddXxNx => f.write_str("ERR XX and NX options at the same time are not compatible"),
            ZaddGtLtNx => {
                f.write_str("ERR GT, LT, and/or NX options at the same time are not compatible")
            }
            ZaddIncrPair => f.write_str("ERR INCR option supports a single increment-element pair"),
            WeightNotFloat => f.write_str("ERR weight value is not a float"),
            AtLeastOneKey(cmd) => write!(f, "ERR at least 1 input key is needed for '{cmd}' command"),
            LimitNegative => f.write_str("ERR LIMIT can't be negative"),
            OutOfRangePositive => f.write_str("ERR value is out of range, must be positive"),
            OutOfRangeLong => f.write_str(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ),
            OutOfRange => f.write_str("ERR value is out of range"),
            ZrangeLimitNeedsBy => f.write_str(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ),
            ZrangeWithscoresBylex => {
                f.write_str("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
            }
            SortNotDouble => f.write_str("ERR One or more scores can't be converted into double"),
            HllNotHll => f.write_str("WRONGTYPE Key is not a valid HyperLogLog string value."),
            HllCorrupt => f.write_str("INVALIDOBJ Corrupted HLL object detected"),
            PfdebugNoKey => f.write_str("ERR The specified key does not exist"),
            PfdebugNotSparse => f.write_str("ERR HLL encoding is not sparse"),
            PfdebugUnknown(sub) => {
                write!(f, "ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(sub))
            }
            HllSelfTest(what) => write!(f, "TESTFAILED {what}"),
            GeoLonLat(lon, lat) => write!(
                f,
                "ERR invalid longitude,latitude pair {:.6},{:.6}",
                f64::from_bits(*lon),
                f64::from_bits(*lat)
            ),
            GeoUnit => f.write_str("ERR unsupported unit provided. please use M, KM, FT, MI"),
            GeoNotNumeric(what) => write!(f, "ERR need numeric {what}"),
            GeoRadiusNegative => f.write_str("ERR radius cannot be negative"),
            GeoBoxNegative => f.write_str("ERR height or width cannot be negative"),
            GeoMemberUnknown => f.write_str("ERR could not decode requested zset member"),
            GeoCountNotPositive => f.write_str("ERR COUNT must be > 0"),
            GeoStoreWith(what) => write!(
                f,
                "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            ),
            GeoNeedFrom(cmd) => {
                write!(f, "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {cmd}")
            }
            GeoNeedBy(cmd) => {
                write!(f, "ERR exactly one of BYRADIUS and BYBOX can be specified for {cmd}")
            }
            GeoAnyNeedsCount => f.write_str("ERR the ANY argument requires COUNT argument"),
            MultiNested => f.write_str("ERR MULTI calls can not be nested"),
            WatchInMulti => f.write_str("ERR WATCH inside MULTI is not allowed"),
            ExecWithoutMulti => f.write_str("ERR EXEC without MULTI"),
            DiscardWithoutMulti => f.write_str("ERR DISCARD without MULTI"),
            NotInMulti => f.write_str("ERR Command not allowed inside a transaction"),
            ExecAbort => f.write_str("EXECABORT Transaction discarded because of previous errors."),
            SubscribeContext(cmd) => write!(
                f,
                "ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ),
            DenyBlocking(cmd) => write!(f, "ERR {cmd} isn't allowed for a DENY BLOCKING client"),
            MonitorDenyBlocking => f.write_str("ERR MONITOR isn't allowed for DENY BLOCKING client"),
            MaxClients => f.write_str("ERR max number of clients reached"),
            ClusterDisabled => f.write_str("ERR This instance has cluster support disabled"),
            ReplicaKeyspace => f.write_str("ERR Replica can't interact with the keyspace"),
            NoPermCommand(c) => write!(
                f,
                "NOPERM this user has no permissions to run the '{c}' command"
            ),
            NoPermKey => f.write_str(
                "NOPERM this user has no permissions to access one of the keys used as arguments",
            ),
            NoPermChannel => f.write_str(
                "NOPERM this user has no permissions to access one of the channels used as arguments",
            ),
            AclModifier { modifier, why } => {
                write!(f, "ERR Error in ACL SETUSER modifier '{modifier}': {why}")
            }
            AclUnmatchedParen(at) => write!(
                f,
                "ERR Unmatched parenthesis in acl selector starting at '{at}'."
            ),
            AclNoSuchUser(u) => write!(f, "ERR User '{u}' not found"),
            AclNoFile => f.write_str(
                "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
            ),
            ExecRejected(why) => {
                // Redis drops the ERR code of the reason (not NOPERM's).
                let why = why.to_string();
                let why = why.strip_prefix("ERR ").unwrap_or(&why);
                write!(f, "EXECABORT Transaction discarded because of: {why}")
            }
            ScriptNoPerm(why) => write!(f, "ERR The user executing the script {why}"),
            NoPermSinceQueued(why) => write!(
                f,
                "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
            ),
            SortDenied(opt) => write!(
                f,
                "ERR {opt} option of SORT denied due to insufficient ACL permissions."
            ),
            ProtectedMode => f.write_str("DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside."),
            NumKeysNegative => f.write_str("ERR Number of keys can't be negative"),
            NumKeysTooMany => f.write_str("ERR Number of keys can't be greater than number of args"),
            NoScript => f.write_str("NOSCRIPT No matching script. Please use EVAL."),
            BusyScript => f.write_str(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            ),
            BusyFunction => f.write_str(
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
            ),
            NotBusy => f.write_str("NOTBUSY No scripts in execution right now."),
            Unkillable => f.write_str(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. \
                 You can either wait the script termination or kill the server in a hard way \
                 using the SHUTDOWN NOSAVE command.",
            ),
            ScriptKilled => f.write_str("ERR Script killed by user with SCRIPT KILL..."),
            ShebangEngine(s) => write!(f, "ERR Unexpected engine in script shebang: {s}"),
            ShebangFlag(s) => write!(f, "ERR Unexpected flag in script shebang: {s}"),
            ShebangOption(s) => write!(f, "ERR Unknown lua shebang option: {s}"),
            ShebangInvalid => f.write_str("ERR Invalid script shebang"),
            ScriptNoArgs => f.write_str("ERR Please specify at least one argument for this redis lib call"),
            ScriptArgType => f.write_str("ERR Lua redis lib command arguments must be strings or integers"),
            ScriptUnknownCommand => f.write_str("ERR Unknown Redis command called from script"),
            ScriptWrongArity => f.write_str("ERR Wrong number of args calling Redis command from script"),
            ScriptNotAllowed => f.write_str("ERR This Redis command is not allowed from script"),
            ScriptWriteInReadOnly => f.write_str("ERR Write commands are not allowed from read-only scripts."),
            ScriptStale => f.write_str("ERR Can not execute the command on a stale replica"),
            ScriptAborted => f.write_str("ERR script execution failed"),
            BlockInScript(c) => write!(f, "ERR {c} command is not allowed with BLOCK option from scripts"),
            ScriptDebugPipeline => f.write_str("ERR SCRIPT DEBUG must be called outside a pipeline"),
            ScriptRoWithWriteFlag => f.write_str("ERR Can not execute a script with write flag using *_ro command."),
            ScriptDebugMode => f.write_str("ERR Use SCRIPT DEBUG YES/SYNC/NO"),
            ScriptDebugAbsent => f.write_str("ERR SCRIPT DEBUG YES/SYNC is not supported: Damselfly has no Lua debugger"),
            Script(s) => f.write_str(s),
            StreamId => f.write_str("ERR Invalid stream ID specified as stream command argument"),
            XaddIdTooSmall => f.write_str(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
            XaddIdZero => f.write_str("ERR The ID specified in XADD must be greater than 0-0"),
            StreamExhausted => f.write_str(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ),
            ElementsTooLarge => f.write_str("ERR Elements are too large to be stored"),
            MaxlenNegative => f.write_str("ERR The MAXLEN argument must be >= 0."),
            StreamLimitNegative => f.write_str("ERR The LIMIT argument must be >= 0."),
            MaxlenMinidConflict => f.write_str(
                "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
            ),
            LimitWithoutTrim => f.write_str(
                "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
            ),
            XtrimNoStrategy => f.write_str("ERR syntax error, XTRIM must be called with a trimming strategy"),
            LimitWithoutApprox => {
                f.write_str("ERR syntax error, LIMIT cannot be used without the special ~ option")
            }
            InvalidStartId => f.write_str("ERR invalid start ID for the interval"),
            InvalidEndId => f.write_str("ERR invalid end ID for the interval"),
            StreamsUnbalanced(cmd, sym) => write!(
                f,
                "ERR Unbalanced {cmd} list of streams: for each stream key an ID or '{sym}' must be specified."
            ),
            XreadOnlyGroup(opt) => write!(
                f,
                "ERR The {opt} option is only supported by XREADGROUP. You called XREAD instead."
            ),
            MissingGroup => f.write_str("ERR Missing GROUP option for XREADGROUP"),
            NoGroup { key, group, read } => write!(
                f,
                "NOGROUP No such key '{}' or consumer group '{}'{}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(group),
                if *read { " in XREADGROUP with GROUP option" } else { "" }
            ),
            NoGroupForKey { group, key } => write!(
                f,
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(group),
                String::from_utf8_lossy(key)
            ),
            DollarInXreadgroup => f.write_str(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            ),
            GtOutsideXreadgroup => f.write_str(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ),
            BusyGroup => f.write_str("BUSYGROUP Consumer Group name already exists"),
            XgroupNeedsKey => f.write_str(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            ),
            EntriesReadInvalid => f.write_str("ERR value for ENTRIESREAD must be positive or -1"),
            InvalidArgFor(what, cmd) => write!(f, "ERR Invalid {what} argument for {cmd}"),
            XclaimOption(opt) => write!(f, "ERR Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt)),
            XautoclaimCount => f.write_str("ERR COUNT must be > 0"),
            EntriesAddedNegative => f.write_str("ERR entries_added must be positive"),
            XsetidSmaller(what) => write!(f, "ERR The ID specified in XSETID is smaller than {what}"),
            XsetidEntriesAdded => f.write_str(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ),
            StreamKeyGone => f.write_str("UNBLOCKED the stream key no longer exists"),
            BlockedGroupGone => {
                f.write_str("NOGROUP the consumer group this client was blocked on no longer exists")
            }
            BusyKey => f.write_str("BUSYKEY Target key name already exists."),
            DumpPayload => f.write_str("ERR DUMP payload version or checksum are wrong"),
            BadDataFormat => f.write_str("ERR Bad data format"),
            Loading => f.write_str("LOADING Redis is loading the dataset in memory"),
            Misconf => f.write_str(
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.",
            ),
            NoReplicas => f.write_str("NOREPLICAS Not enough good replicas to write."),
            Other(s) => f.write_str(s),
            InvalidMasterPort => f.write_str("ERR Invalid master port"),
            ReadOnlyReplica => f.write_str("READONLY You can't write against a read only replica."),
            MasterDown => f.write_str(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ),
            NoMasterLink => {
                f.write_str("NOMASTERLINK Can't SYNC while not connected with my master")
            }
        }
    }
}

impl CmdError {
    /// The error code counted in INFO errorstats (`ERR`, `WRONGTYPE`, ...).
    pub fn code(&self) -> String {
        let s = self.to_string();
        s.split(' ').next().unwrap_or("ERR").to_string()
    }
}
