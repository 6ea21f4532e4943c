//! What can be refused about networks. The wire layer maps each variant to the code Alibaba
//! Cloud documents, once.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("VPC {0} does not exist")]
    VpcNotFound(String),
    #[error("vSwitch {0} does not exist")]
    VSwitchNotFound(String),
    #[error("Security group {0} does not exist")]
    SecurityGroupNotFound(String),
    /// A rule's source (ingress) or destination (egress) group.
    #[error("Security group {id} named by the rule does not exist")]
    PeerGroupNotFound { id: String, egress: bool },
    #[error("Elastic IP address {0} does not exist")]
    EipNotFound(String),
    #[error("CIDR block {0} is not valid")]
    CidrMalformed(String),
    #[error("CIDR block {0} is not inside the VPC's block")]
    CidrOutsideVpc(String),
    #[error("CIDR block {0} overlaps another vSwitch of the VPC")]
    CidrOverlapped(String),
    #[error("VPC {0} is not available yet")]
    VpcNotAvailable(String),
    #[error("vSwitch {0} is not available yet")]
    VSwitchNotAvailable(String),
    #[error("VPC {0} still has vSwitches")]
    VpcHasVSwitches(String),
    #[error("VPC {0} still has security groups")]
    VpcHasGroups(String),
    #[error("vSwitch {0} still has instances")]
    VSwitchInUse(String),
    #[error("Security group {0} still has instances")]
    GroupInUse(String),
    #[error("Security group {0} is named by another group's rules")]
    GroupReferenced(String),
    #[error("vSwitch {vswitch} is in zone {zone}, not the one asked for")]
    VSwitchZoneMismatch { vswitch: String, zone: String },
    #[error("Security group {0} is not in the VPC of the vSwitch or instance")]
    GroupVpcMismatch(String),
    #[error("Security group {0} named by the rule is in another VPC")]
    PeerGroupVpcMismatch(String),
    #[error("An instance cannot be in basic and enterprise groups at once")]
    GroupKindsMixed,
    #[error("An instance can be in at most {0} security groups")]
    TooManyGroups(usize),
    #[error("Security group {0} is the instance's last one")]
    LastGroup(String),
    #[error("A security group holds at most {0} rules")]
    TooManyRules(usize),
    #[error("The VSwitchId is necessary")]
    VSwitchNecessary,
    #[error("Security group {0} is not in the default VPC; name a vSwitch")]
    GroupNotInDefaultVpc(String),
    #[error("vSwitch {0} has no free address left")]
    IpNotEnough(String),
    #[error("Private IP address {ip} is not a usable address of vSwitch {vswitch}")]
    PrivateIpOutside { ip: String, vswitch: String },
    #[error("Private IP address {0} is taken")]
    PrivateIpTaken(String),
    #[error("A private IP address can be given for one instance at a time")]
    PrivateIpWithAmount,
    #[error("The region has no public address pool")]
    NoPublicPool,
    #[error("The region's public address pool is exhausted")]
    PublicPoolExhausted { eip: bool },
    #[error("Elastic IP address {0} is associated")]
    EipInUse(String),
    #[error("Elastic IP address {0} is not associated (with that instance)")]
    EipNotInUse(String),
    #[error("Instance {0} already has a public address")]
    InstanceHasPublicAddress(String),
    #[error("Instance {0} is not in a VPC")]
    InstanceNotNetworked(String),
    #[error("Rule priority must be 1 to 100")]
    RulePriority,
    #[error("Port range is not valid")]
    RulePorts,
    #[error("Port range does not fit the protocol")]
    RuleProtocolPorts,
    #[error("Enterprise security groups have no inner access policy")]
    EnterpriseInnerAccess,
    #[error("The region has no VXLAN identifier left for another VPC")]
    VpcQuota,
}
