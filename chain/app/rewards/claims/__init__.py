"""MsgClaimRewards: collecting a settled epoch by revealing its seed."""
