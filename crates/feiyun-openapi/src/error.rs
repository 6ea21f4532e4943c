//! Wire errors: code, HTTP status and the documented message. Domain errors are mapped here, once.

use feiyun_domain::net::NetError;
use feiyun_domain::storage::StorageError;
use feiyun_domain::DomainError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), message: message.into() }
    }

    pub fn missing(param: &str) -> ApiError {
        ApiError::new(
            400,
            "MissingParameter",
            format!("The input parameter \"{param}\" that is mandatory for processing this request is not supplied."),
        )
    }

    pub fn invalid(param: &str) -> ApiError {
        ApiError::new(400, "InvalidParameter", format!("The specified parameter \"{param}\" is not valid."))
    }

    pub fn invalid_because(param: &str, why: &str) -> ApiError {
        ApiError::new(400, "InvalidParameter", format!("The specified parameter \"{param}\" is not valid: {why}"))
    }

    pub fn invalid_version() -> ApiError {
        ApiError::new(400, "InvalidVersion", "Specified parameter Version is not valid.")
    }

    pub fn unknown_action() -> ApiError {
        ApiError::new(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        )
    }

    /// Cloud Assistant actions name some errors differently from the rest of ECS.
    pub fn from_domain_assistant(e: DomainError) -> ApiError {
        match e {
            DomainError::InstanceNotFound(_) => {
                ApiError::new(404, "InvalidInstance.NotFound", "The specified instance does not exist.")
            }
            other => ApiError::from(other),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        match e {
            DomainError::MissingParameter { name } => ApiError::missing(&name),
            DomainError::InvalidParameter { name, .. } if name == "HostName" => {
                ApiError::new(400, "InvalidHostName.Malformed", "The specified parameter \"HostName\" is not valid.")
            }
            DomainError::InvalidParameter { name, .. } if name == "InstanceName" => {
                ApiError::new(400, "InvalidInstanceName.Malformed", "The specified parameter \"InstanceName\" is not valid.")
            }
            DomainError::InvalidParameter { name, reason } => ApiError::invalid_because(&name, &reason),
            DomainError::RegionNotFound(_) => ApiError::new(404, "InvalidRegionId.NotFound", "The specified RegionId does not exist."),
            DomainError::ZoneNotFound(_) => ApiError::new(404, "InvalidZoneId.NotFound", "The specified zoneId does not exist."),
            DomainError::InstanceTypeNotFound(_) => {
                ApiError::new(400, "InvalidInstanceType.ValueNotSupported", "The specified InstanceType beyond the permitted range.")
            }
            DomainError::InstanceTypeNotInZone { .. } => {
                ApiError::new(403, "InvalidInstanceType.ZoneNotSupported", "The specified zone does not support this instancetype.")
            }
            DomainError::ImageNotFound(_) => ApiError::new(404, "InvalidImageId.NotFound", "The specified ImageId does not exist."),
            DomainError::InstanceNotFound(_) => {
                ApiError::new(404, "InvalidInstanceId.NotFound", "The specified InstanceId does not exist.")
            }
            DomainError::IncorrectStatus { .. } => {
                ApiError::new(403, "IncorrectInstanceStatus", "The current status of the resource does not support this operation.")
            }
            DomainError::Initializing => ApiError::new(
                403,
                "IncorrectInstanceStatus.Initializing",
                "The specified instance is in the process of initialization.",
            ),
            DomainError::NoStock => ApiError::new(
                403,
                "OperationDenied.NoStock",
                "The requested resource is sold out in the specified zone; try other types of resources or other regions and zones.",
            ),
            DomainError::IdempotentParameterMismatch => ApiError::new(
                400,
                "IdempotentParameterMismatch",
                "Request uses a client token in a previous request but is not identical to that request.",
            ),
            DomainError::LastTokenProcessing => ApiError::new(403, "LastTokenProcessing", "The last token request is processing."),
            DomainError::CommandNotFound(_) => ApiError::new(404, "InvalidCmdId.NotFound", "The specified command ID does not exist."),
            DomainError::InvocationNotFound(_) => {
                ApiError::new(404, "InvalidInvokeId.NotFound", "The specified invoke ID does not exist.")
            }
            DomainError::InstanceNotRunning(_) => {
                ApiError::new(403, "IncorrectInstanceStatus", "The current status of the resource does not support this operation.")
            }
            DomainError::DeploymentSetNotFound(_) => {
                ApiError::new(404, "DeploymentSet.NotFound", "The specified deployment set does not exist.")
            }
            DomainError::DeploymentSetInUse(_) => {
                ApiError::new(403, "DeploymentSet.InstanceExist", "The specified deployment set still contains instances.")
            }
            DomainError::AccountExists(n) => ApiError::new(409, "AccountName.Exists", format!("Account {n} already exists.")),
            DomainError::NotEnoughBalance => {
                ApiError::new(403, "InvalidAccountStatus.NotEnoughBalance", "Your account does not have enough balance.")
            }
            DomainError::AccountArrearage => {
                ApiError::new(400, "Account.Arrearage", "Your account has an outstanding payment.")
            }
            DomainError::InstanceLocked(reason) => ApiError::new(
                403,
                "IncorrectInstanceStatus",
                format!("The current status of the resource does not support this operation: it is locked ({reason})."),
            ),
            DomainError::ChargeTypeViolation { charge } => ApiError::new(
                403,
                "ChargeTypeViolation",
                format!("The operation is not permitted due to the charge type ({charge}) of the instance."),
            ),
            DomainError::SpotPriceTooLow { limit, market } => ApiError::new(
                400,
                "InvalidSpotPriceLimit.LowerThanPublicPrice",
                format!("The specified SpotPriceLimit {limit} is lower than the current spot price {market}."),
            ),
            DomainError::HostNotFound(_) => ApiError::new(404, "InvalidHostId.NotFound", "The specified host does not exist."),
            // The instance's host does not answer: a temporary failure of the service, not of the
            // request.
            DomainError::HostUnreachable(_) => ApiError::new(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server: the instance's host is unreachable.",
            ),
            DomainError::HostReachable(h) => ApiError::new(
                403,
                "IncorrectHostStatus",
                format!("Host {h} still answers; only an unreachable host is evacuated (drain a live one)."),
            ),
            e @ DomainError::PartitionSuspected { .. } => {
                ApiError::new(403, "OperationDenied.PartitionSuspected", format!("{e}; pass Force=true to go on."))
            }
            DomainError::JoinTokenNotFound(_) => {
                ApiError::new(404, "InvalidToken.NotFound", "The specified join token does not exist.")
            }
            DomainError::Forbidden => {
                ApiError::new(403, "Forbidden.RAM", "User not authorized to operate on the specified resource.")
            }
            DomainError::Net(e) => net_error(e),
            DomainError::Storage(e) => storage_error(e),
            DomainError::DryRunOk => {
                ApiError::new(400, "DryRunOperation", "Request validation has been passed with DryRun flag set.")
            }
            DomainError::Internal(_) => ApiError::internal(),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        storage_error(e)
    }
}

/// Storage errors, with the codes the ECS API reference documents for disks, snapshots, images
/// and key pairs (AlibabaCloudDocs/ecs, API Reference, 2021); where it documents none, the
/// closest documented one (see docs/storage.md).
fn storage_error(e: StorageError) -> ApiError {
    use StorageError as S;
    let status = "The current disk status does not support this operation.";
    match e {
        S::DiskNotFound(_) => ApiError::new(404, "InvalidDiskId.NotFound", "The specified disk does not exist."),
        S::SnapshotNotFound(_) => {
            ApiError::new(404, "InvalidSnapshotId.NotFound", "The specified SnapshotId does not exist.")
        }
        S::KeyPairNotFound(_) => ApiError::new(
            400,
            "InvalidKeyPairName.NotFound",
            "The specified KeyPairName does not exist in our records.",
        ),
        S::KeyPairExists(_) => ApiError::new(400, "KeyPair.AlreadyExist", "The key pair already exist."),
        S::PublicKeyMalformed(why) => ApiError::new(
            400,
            "InvalidPublicKeyBody.Malformed",
            format!("The PublicKeyBody format is not supported: {why}."),
        ),
        S::CategoryNotSupported(_) => ApiError::new(
            400,
            "InvalidDiskCategory.ValueNotSupported",
            "The specified parameter \"DiskCategory\" is not valid.",
        ),
        e @ S::DataDiskSize { .. } => ApiError::new(400, "InvalidDataDiskSize.ValueNotSupported", format!("{e}.")),
        e @ S::SystemDiskSize { size, min, .. } if size < min => {
            ApiError::new(404, "InvalidSystemDiskSize.LessThanMinSize", format!("{e}."))
        }
        e @ S::SystemDiskSize { .. } => {
            ApiError::new(400, "InvalidSystemDiskSize.ValueNotSupported", format!("{e}."))
        }
        S::SystemDiskBelowImage { .. } => ApiError::new(
            404,
            "InvalidSystemDiskSize.LessThanImageSize",
            "The specified parameter SystemDisk.Size is less than the image size.",
        ),
        S::ShrinkRefused(_) => ApiError::new(
            403,
            "InvalidDiskSize.TooSmall",
            "Specified new disk size is less than or equal the original disk size.",
        ),
        S::TooLarge { .. } => {
            ApiError::new(403, "InvalidDiskSize.TooLarge", "Specified new disk size is beyond the permitted range.")
        }
        S::SmallerThanSnapshot(_) => ApiError::new(
            403,
            "InvalidDiskSize.TooSmall",
            "Specified disk size is less than the size of snapshot.",
        ),
        S::IncorrectDiskStatus { .. } => ApiError::new(403, "IncorrectDiskStatus", status),
        S::DiskStillAttached => {
            ApiError::new(403, "DiskStillAttached", "The disk is still attached to an instance; detach it first.")
        }
        S::DiskInUse => ApiError::new(404, "InvalidDisk.InUse", "The specified disk has been occupied."),
        S::NotAttachedThere => ApiError::new(
            403,
            "DependencyViolation",
            "The specified disk has not been attached on the specified instance.",
        ),
        S::SystemDisk => ApiError::new(403, "DiskNotPortable", "The specified disk is not a portable disk."),
        S::ZoneMismatch => ApiError::new(
            400,
            "InvalidParameter.Mismatch",
            "The specified disk and instance are not in the same zone.",
        ),
        S::DeviceMalformed(_) => ApiError::new(400, "InvalidDevice.Malformed", "The specified port is not valid."),
        S::DeviceInUse(_) => ApiError::new(403, "InvalidDevice.InUse", "The specified device has been occupied."),
        S::TooManyDisks(_) => ApiError::new(
            403,
            "InstanceDiskLimitExceeded",
            "The amount of the disk on instance in question reach its limits.",
        ),
        S::CreatingSnapshot => ApiError::new(
            403,
            "IncorrectDiskStatus.CreatingSnapshot",
            "A previous snapshot creation is in process.",
        ),
        S::DiskCreatingSnapshot => ApiError::new(
            403,
            "DiskCreatingSnapshot",
            "The operation is denied due to a snapshot of the specified disk is not completed yet.",
        ),
        S::NeverAttached => ApiError::new(
            403,
            "IncorrectDiskStatus.NeverAttached",
            "The specified disk has never been attached to any instance.",
        ),
        S::SystemDiskSnapshot => ApiError::new(
            403,
            "IncorrectDiskType.NotSupport",
            "The specified device type is not supported: a system disk is the instance's root filesystem; use CreateImage.",
        ),
        S::SnapshotNotReady(_) => {
            ApiError::new(403, "InvalidSnapshotId.NotReady", "The specified snapshot has not completed yet.")
        }
        S::SnapshotOfAnotherDisk(_) => ApiError::new(
            403,
            "InvalidParameter.Mismatch",
            "The specified snapshot is not created from the specified disk.",
        ),
        S::SnapshotElsewhere(_) => ApiError::new(
            403,
            "OperationDenied",
            "The specified snapshot does not support ResetDisk: it was taken before the disk moved to another host.",
        ),
        S::SnapshotCreatedImage(_) => ApiError::new(
            403,
            "SnapshotCreatedImage",
            "The snapshot has been used to create user defined image(s).",
        ),
        S::SnapshotCreatedDisk(_) => {
            ApiError::new(403, "SnapshotCreatedDisk", "The snapshot has been used to create disk(s).")
        }
        S::ImageNotReady(_) => ApiError::new(
            403,
            "OperationDenied.ImageNotValid",
            "The specified Image is not available: it is still being created, or its creation failed.",
        ),
        S::ImageImporting(_) => ApiError::new(403, "ImageIsImporting", "The specified Image is importing."),
        S::ImageInUse(_) => {
            ApiError::new(403, "ImageUsingByInstance", "The specified image has been used to create instances.")
        }
        S::ImageShared(_) => ApiError::new(403, "ImageUseShared", "The specified image has been shared to others."),
        S::ImageNameTaken(_) => {
            ApiError::new(400, "InvalidImageName.Duplicated", "The specified Image name has already bean used.")
        }
        S::AccountNotFound(_) => ApiError::new(
            404,
            "InvalidAccount.NotFound",
            "The specified parameter \"AddAccount.n\" or \"RemoveAccount.n\" does not exist.",
        ),
        S::ShareWithSelf => {
            ApiError::new(404, "InvalidAccount.Forbbiden", "The specified Account does not yourself.")
        }
        S::ImportObjectNotFound(_) => ApiError::new(
            400,
            "InvalidOSSObject.NotFound",
            "The specified OSS object does not exist in this region.",
        ),
        S::ImportObjectMalformed(_) => {
            ApiError::new(400, "InvalidOSSObject.Malformed", "The specified OSS object is wrongly formed.")
        }
        S::ImportNotConfigured => ApiError::new(
            400,
            "InvalidRegion.NotSupport",
            "The specified region does not support image import or export.",
        ),
        S::HostUnavailable(_) => ApiError::new(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server: the disk's host is unreachable.",
        ),
    }
}

/// Network errors, with the codes ECS and VPC document (the generic InvalidParameter where they
/// document none).
fn net_error(e: NetError) -> ApiError {
    use NetError as N;
    let dependent = "Specified object has dependent resources.";
    match e {
        N::VpcNotFound(_) => ApiError::new(404, "InvalidVpcId.NotFound", "Specified VPC does not exist."),
        N::VSwitchNotFound(_) => {
            ApiError::new(404, "InvalidVSwitchId.NotFound", "Specified virtual switch does not exist.")
        }
        N::SecurityGroupNotFound(_) => {
            ApiError::new(404, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId does not exist.")
        }
        N::PeerGroupNotFound { egress: false, .. } => ApiError::new(
            404,
            "InvalidSourceGroupId.NotFound",
            "The SourceGroupId provided does not exist in our records.",
        ),
        N::PeerGroupNotFound { egress: true, .. } => {
            ApiError::new(404, "InvalidDestGroupId.NotFound", "The DestGroupId provided does not exist in our records.")
        }
        N::EipNotFound(_) => {
            ApiError::new(404, "InvalidAllocationId.NotFound", "Specified allocation ID is not found.")
        }
        N::CidrMalformed(_) => ApiError::new(400, "InvalidCidrBlock.Malformed", "Specified CIDR block is not valid."),
        N::CidrOutsideVpc(_) => ApiError::new(
            400,
            "InvalidCidrBlock.Malformed",
            "Specified CIDR block is not valid: it is not inside the CIDR block of the VPC.",
        ),
        N::CidrOverlapped(_) => {
            ApiError::new(400, "InvalidCidrBlock.Overlapped", "Specified CIDR block overlapped with other vswitch/s.")
        }
        N::VpcNotAvailable(_) => {
            ApiError::new(400, "IncorrectVpcStatus", "Current VPC status does not support this operation.")
        }
        N::VSwitchNotAvailable(_) => ApiError::new(
            400,
            "IncorrectVSwitchStatus",
            "The current status of virtual switch does not support this operation.",
        ),
        N::VpcHasVSwitches(_) => ApiError::new(400, "DependencyViolation.VSwitch", dependent),
        N::VpcHasGroups(_) => ApiError::new(400, "DependencyViolation.SecurityGroup", dependent),
        N::VSwitchInUse(_) => ApiError::new(400, "DependencyViolation", dependent),
        N::GroupInUse(_) => {
            ApiError::new(403, "DependencyViolation", "There is still instance(s) in the specified security group.")
        }
        N::GroupReferenced(_) => ApiError::new(
            403,
            "DependencyViolation",
            "The specified security group has been authorized in another one.",
        ),
        N::VSwitchZoneMismatch { .. } => {
            ApiError::new(400, "InvalidParameter.Mismatch", "Specified virtual switch is not in the specified zone.")
        }
        N::GroupVpcMismatch(_) => ApiError::new(
            400,
            "InvalidParameter.Mismatch",
            "Specified security group and virtual switch are not in the same VPC.",
        ),
        N::PeerGroupVpcMismatch(_) => ApiError::new(
            400,
            "InvalidSourceGroupId.Mismatch",
            "Specified security group and source group are not in the same VPC.",
        ),
        N::GroupKindsMixed => ApiError::new(
            403,
            "EnterpriseGroupLimited.MutliGroupType",
            "The specified instance can not join multi SecurityGroup types.",
        ),
        e @ N::TooManyGroups(_) => ApiError::new(400, "JoinedGroupLimitExceed", format!("{e}.")),
        N::LastGroup(_) => ApiError::new(
            403,
            "InstanceLastSecurityGroup",
            "The specified security group is the last security group of the instance.",
        ),
        N::TooManyRules(_) => ApiError::new(
            403,
            "AuthorizationLimitExceed",
            "The limit of authorization records in the security group reaches.",
        ),
        N::VSwitchNecessary => ApiError::new(400, "InvalidVSwitchId.Necessary", "The VSwitchId is necessary."),
        e @ N::GroupNotInDefaultVpc(_) => ApiError::new(400, "InvalidSecurityGroup.NotInDefaultVpc", format!("{e}.")),
        N::IpNotEnough(_) => ApiError::new(
            400,
            "InvalidVSwitchId.IpNotEnough",
            "The specified VSwitch does not have enough IP addresses.",
        ),
        N::PrivateIpOutside { .. } => ApiError::new(
            400,
            "InvalidPrivateIpAddress",
            "Specified private IP address is not in the CIDR block of virtual switch.",
        ),
        N::PrivateIpTaken(_) => {
            ApiError::new(400, "InvalidPrivateIpAddress.Duplicated", "Specified private IP address is duplicated.")
        }
        N::PrivateIpWithAmount => ApiError::invalid_because("PrivateIpAddress", "it can only be given with Amount=1"),
        N::NoPublicPool | N::PublicPoolExhausted { eip: false } => ApiError::new(
            400,
            "ResourceNotAvailable",
            "Resource you requested is not available in this region or zone.",
        ),
        N::PublicPoolExhausted { eip: true } => {
            ApiError::new(400, "QuotaExceeded.Eip", "The public IP addresses of the region are used up.")
        }
        N::EipInUse(_) | N::EipNotInUse(_) => ApiError::new(
            400,
            "IncorrectEipStatus",
            "The current status of the resource does not support this operation.",
        ),
        N::InstanceHasPublicAddress(_) => ApiError::new(
            400,
            "InvalidAssociation.Duplicated",
            "Specified instance already has a public IP address or an EIP.",
        ),
        N::InstanceNotNetworked(_) => ApiError::new(
            403,
            "IncorrectInstanceStatus",
            "The current status of the resource does not support this operation: the instance is not in a VPC.",
        ),
        N::RulePriority => {
            ApiError::new(400, "InvalidPriority.ValueNotSupported", "The parameter Priority is invalid.")
        }
        N::RulePorts => {
            ApiError::new(400, "InvalidIpProtocol.Malformed", "The specified parameter \"PortRange\" is not valid.")
        }
        N::RuleProtocolPorts => ApiError::new(
            400,
            "OperationDenied",
            "The specified IpProtocol does not exist or IpProtocol and PortRange do not match.",
        ),
        N::EnterpriseInnerAccess => {
            ApiError::invalid_because("InnerAccessPolicy", "enterprise security groups have no inner access policy")
        }
        N::VpcQuota => ApiError::new(403, "QuotaExceeded.Vpc", "The VPC quota of the region is reached."),
    }
}
